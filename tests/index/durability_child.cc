// Helper for durability_test: adds items start, start+1, ... to the gallery
// in `dir` one at a time and writes "<i> <id>\n" to stdout after each Add
// returns OK (the acknowledgement), saving index.faiss every 7 items so a
// kill can also land inside SaveIndex. Runs until killed or `count` done.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/index/gallery.h"
#include "tests/index/test_util.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s DIR SPEC START COUNT\n", argv[0]);
    return 2;
  }
  const int kDim = 8;
  auto gallery = embedsearch::Gallery::Open(argv[1], kDim, argv[2], "l2");
  if (!gallery.ok()) {
    std::fprintf(stderr, "open: %s\n", gallery.status().ToString().c_str());
    return 1;
  }
  const long start = std::atol(argv[3]);
  const long count = std::atol(argv[4]);
  for (long i = start; i < start + count; ++i) {
    auto ids = (*gallery)->Add({embedsearch::testing_util::MakeItem(i, kDim)});
    if (!ids.ok()) {
      std::fprintf(stderr, "add: %s\n", ids.status().ToString().c_str());
      return 1;
    }
    std::string line = std::to_string(i) + " " + std::to_string((*ids)[0]) + "\n";
    if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return 1;
    }
    if (i % 7 == 0 && !(*gallery)->SaveIndex().ok()) return 1;
  }
  return 0;
}
