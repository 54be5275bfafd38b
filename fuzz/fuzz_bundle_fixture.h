// A small real bundle for fuzzers that need a loaded service or a valid
// bundle to mutate: random-weight encoder, synthetic gallery.
#ifndef EMBEDSEARCH_FUZZ_FUZZ_BUNDLE_FIXTURE_H_
#define EMBEDSEARCH_FUZZ_FUZZ_BUNDLE_FIXTURE_H_

#include <string>

namespace embedsearch {

// Writes the bundle once per process into a fresh temp directory and
// returns its path; aborts if that fails (a broken fixture is a bug).
const std::string& FuzzBundleDir();

}  // namespace embedsearch

#endif  // EMBEDSEARCH_FUZZ_FUZZ_BUNDLE_FIXTURE_H_
