// The request path: arbitrary bytes parsed as a SearchRequest (and as an
// EncodeRequest / AddImagesRequest) go into the service handler exactly as
// the gRPC layer would pass them. Any status is fine; a crash, a sanitizer
// report or a hang is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "fuzz/fuzz_bundle_fixture.h"
#include "server/service.h"

namespace {

embedsearch::SearchService& Service() {
  static embedsearch::SearchService* service = [] {
    embedsearch::ServiceOptions options;
    options.max_k = 50;
    options.compute_threads = 1;
    auto* s = new embedsearch::SearchService(options);
    if (!s->LoadBundle(embedsearch::FuzzBundleDir()).ok()) std::abort();
    return s;
  }();
  return *service;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& service = Service();
  embedsearch::v1::SearchRequest search;
  if (search.ParseFromArray(data, static_cast<int>(size))) {
    // include_images reads PNGs from the catalog: keep it, it is a real path.
    (void)service.Search(search);
  }
  embedsearch::v1::EncodeRequest encode;
  encode.set_image(reinterpret_cast<const char*>(data), size);
  (void)service.Encode(encode);
  return 0;
}
