// Test fixtures for the server: small real bundles and a running server.
#ifndef EMBEDSEARCH_TESTS_SERVER_TEST_BUNDLE_H_
#define EMBEDSEARCH_TESTS_SERVER_TEST_BUNDLE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/data/dataset.h"
#include "embedsearch/v1/search.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace embedsearch {
namespace testing {

// The first `n` Fashion-MNIST training images (loaded once per process).
const Dataset& FashionSubset(size_t n = 300);

// A fresh temporary directory (removed by the OS's tmp cleaning, not here:
// tests keep it for post-mortems).
std::string MakeTempDir(const std::string& prefix);

// Writes a bundle over FashionSubset() with an untrained encoder made from
// `seed` (different seeds give different model versions).
absl::Status MakeBundle(const std::string& dir, uint64_t seed,
                        const std::string& index_spec = "Flat");

// Gallery image `i` of FashionSubset() as PNG bytes.
std::string GalleryPng(size_t i);

std::unique_ptr<v1::ImageSearch::Stub> MakeStub(int port);

// A ClientContext with a 30 s deadline and, if non-empty, the bearer token.
std::unique_ptr<grpc::ClientContext> MakeContext(const std::string& token = "");

// True when `id` is in the server's index: a search by its own stored
// embedding (k = 20) has it among the hits. False on any RPC error.
bool FindsById(v1::ImageSearch::Stub& stub, int64_t id);

}  // namespace testing
}  // namespace embedsearch

#endif  // EMBEDSEARCH_TESTS_SERVER_TEST_BUNDLE_H_
