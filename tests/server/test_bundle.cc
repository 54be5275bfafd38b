#include "tests/server/test_bundle.h"

#include <stdlib.h>

#include <chrono>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/data/preprocess.h"
#include "core/image/image.h"
#include "core/index/bundle.h"
#include "core/nn/encoder.h"

namespace embedsearch {
namespace testing {

const Dataset& FashionSubset(size_t n) {
  static const Dataset* subset = [n] {
    absl::StatusOr<Dataset> all =
        LoadFashionMnist(EMBEDSEARCH_FASHION_MNIST_DIR, "train");
    if (!all.ok()) {
      fprintf(stderr, "cannot load Fashion-MNIST: %s\n",
              all.status().ToString().c_str());
      abort();
    }
    std::vector<size_t> indices(n);
    std::iota(indices.begin(), indices.end(), 0);
    return new Dataset(all->Subset(indices));
  }();
  return *subset;
}

std::string MakeTempDir(const std::string& prefix) {
  const char* tmp = getenv("TMPDIR");
  std::string templ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", prefix,
                                   "-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) abort();
  return templ;
}

absl::Status MakeBundle(const std::string& dir, uint64_t seed,
                        const std::string& index_spec) {
  const Dataset& data = FashionSubset();
  EncoderConfig config;
  absl::StatusOr<std::unique_ptr<Encoder>> encoder =
      Encoder::Create(config, seed);
  if (!encoder.ok()) return encoder.status();
  const int pixels = data.height * data.width;
  std::vector<float> input(data.size() * pixels);
  for (size_t i = 0; i < data.size(); ++i) {
    NormalizePixels(data.image(i), pixels, config.preprocessing,
                    input.data() + i * pixels);
  }
  std::vector<float> embeddings(data.size() * (*encoder)->dim());
  (*encoder)->Encode(input.data(), static_cast<int>(data.size()),
                     embeddings.data(), /*threads=*/1);
  BundleWriteOptions options;
  options.index_spec = index_spec;
  options.trainer_command = "server test fixture";
  return WriteBundle(dir, **encoder, data, embeddings.data(), options);
}

std::string GalleryPng(size_t i) {
  absl::StatusOr<std::string> png = EncodePng(FashionSubset().GetImage(i));
  if (!png.ok()) abort();
  return *png;
}

std::unique_ptr<v1::ImageSearch::Stub> MakeStub(int port) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials(),
      args);
  return v1::ImageSearch::NewStub(channel);
}

std::unique_ptr<grpc::ClientContext> MakeContext(const std::string& token) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(30));
  if (!token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
  return context;
}

bool FindsById(v1::ImageSearch::Stub& stub, int64_t id) {
  v1::SearchRequest request;
  request.set_id(id);
  request.set_k(20);
  v1::SearchResponse response;
  if (!stub.Search(MakeContext().get(), request, &response).ok()) return false;
  for (const v1::Hit& hit : response.hits()) {
    if (hit.id() == id) return true;
  }
  return false;
}

}  // namespace testing
}  // namespace embedsearch
