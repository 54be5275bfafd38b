// The bundle loader: arbitrary bytes as manifest.pb inside an otherwise
// valid bundle. Bundle::Load must refuse what is inconsistent with a status
// that names the problem, and never crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/index/bundle.h"
#include "fuzz/fuzz_bundle_fixture.h"

namespace {

// A private copy of the fixture, so the fixture itself stays valid.
const std::string& ScratchBundle() {
  static const std::string* dir = [] {
    namespace fs = std::filesystem;
    auto* d = new std::string(embedsearch::FuzzBundleDir() + "-manifest");
    fs::remove_all(*d);
    fs::copy(embedsearch::FuzzBundleDir(), *d, fs::copy_options::recursive);
    return d;
  }();
  return *dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  embedsearch::v1::BundleManifest manifest;
  if (!manifest.ParseFromArray(data, static_cast<int>(size))) return 0;
  // Index specs that would train huge IVF quantizers only test FAISS's
  // patience, not our validation.
  if (manifest.index_spec().size() > 32) return 0;
  const std::string& dir = ScratchBundle();
  {
    std::ofstream out(dir + "/manifest.pb", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data),
              static_cast<std::streamsize>(size));
  }
  (void)embedsearch::Bundle::Load(dir);
  return 0;
}
