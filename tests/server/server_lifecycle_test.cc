// Server lifecycle: health before and after a bundle, reload under
// concurrent load, TLS, reflection from a real client, and the binary's
// graceful shutdown on SIGTERM.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/server/test_bundle.h"

extern char** environ;

namespace embedsearch {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;
using testing::GalleryPng;
using testing::MakeContext;

// Every file this test writes lives under one directory, removed at exit.
const std::string& ScratchRoot() {
  static const std::string* root =
      new std::string(testing::MakeTempDir("server-lifecycle"));
  return *root;
}
std::string Scratch(const std::string& name) {
  const std::string dir = ScratchRoot() + "/" + name;
  std::filesystem::create_directories(dir);
  return dir;
}
class RemoveScratch : public ::testing::Environment {
 public:
  void TearDown() override { std::filesystem::remove_all(ScratchRoot()); }
};
[[maybe_unused]] ::testing::Environment* const kRemoveScratch =
    ::testing::AddGlobalTestEnvironment(new RemoveScratch);

// Two bundles shared by every test of this file (built once).
struct Bundles {
  std::string root, a, b;
};
const Bundles& SharedBundles() {
  static const Bundles* bundles = [] {
    auto* b = new Bundles;
    b->root = Scratch("bundles");
    b->a = b->root + "/a";
    b->b = b->root + "/b";
    if (!testing::MakeBundle(b->a, 11).ok()) abort();
    if (!testing::MakeBundle(b->b, 12, "HNSW32").ok()) abort();
    return b;
  }();
  return *bundles;
}

HealthCheckResponse::ServingStatus CheckHealth(int port,
                                               const std::string& service) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  auto stub = Health::NewStub(channel);
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::Status status = stub->Check(MakeContext().get(), request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.status();
}

TEST(ServerLifecycle, HealthIsNotServingUntilABundleIsLoaded) {
  const Bundles& bundles = SharedBundles();
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.log_format = LogFormat::kNone;
  options.service.allowed_bundle_roots = {bundles.root};
  auto server = EmbedSearchServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  EXPECT_EQ(CheckHealth(port, ""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(CheckHealth(port, "embedsearch.v1.ImageSearch"),
            HealthCheckResponse::NOT_SERVING);

  auto stub = testing::MakeStub(port);
  v1::SearchRequest request;
  request.set_image(GalleryPng(0));
  request.set_k(1);
  v1::SearchResponse response;
  grpc::Status status = stub->Search(MakeContext().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("no bundle"));
  v1::GetInfoResponse info;
  ASSERT_TRUE(stub->GetInfo(MakeContext().get(), {}, &info).ok());
  EXPECT_EQ(info.gallery_size(), 0u);

  // No token configured: Reload needs none.
  v1::ReloadRequest reload;
  reload.set_bundle_path(bundles.a);
  v1::ReloadResponse reloaded;
  status = stub->Reload(MakeContext().get(), reload, &reloaded);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reloaded.gallery_size(), 300u);
  EXPECT_EQ(CheckHealth(port, ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(CheckHealth(port, "embedsearch.v1.ImageSearch"),
            HealthCheckResponse::SERVING);
  EXPECT_TRUE(stub->Search(MakeContext().get(), request, &response).ok());
  (*server)->Shutdown();
}

TEST(ServerLifecycle, ReloadUnderConcurrentLoadFailsNoQuery) {
  const Bundles& bundles = SharedBundles();
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.bundle_path = bundles.a;
  options.token = "t";
  options.log_format = LogFormat::kNone;
  options.service.allowed_bundle_roots = {bundles.root};
  auto server = EmbedSearchServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();

  // Valid ids (the same in both bundles: same images, same writer).
  std::vector<int64_t> ids;
  {
    auto stub = testing::MakeStub(port);
    v1::SearchRequest request;
    request.set_image(GalleryPng(0));
    request.set_k(50);
    v1::SearchResponse response;
    ASSERT_TRUE(stub->Search(MakeContext().get(), request, &response).ok());
    for (const v1::Hit& hit : response.hits()) ids.push_back(hit.id());
  }
  ASSERT_EQ(ids.size(), 50u);

  std::atomic<bool> done{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  std::mutex versions_mu;
  std::set<std::string> versions;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      auto stub = testing::MakeStub(port);
      int i = 0;
      while (!done.load()) {
        v1::SearchRequest request;
        switch (i % 3) {
          case 0: request.set_image(GalleryPng((t * 31 + i) % 300)); break;
          case 1: request.mutable_embedding()->mutable_values()->Resize(64, 0.125f); break;
          case 2: request.set_id(ids[i % ids.size()]); break;
        }
        request.set_k(5);
        v1::SearchResponse response;
        grpc::Status status =
            stub->Search(MakeContext().get(), request, &response);
        if (status.ok() && response.hits_size() == 5) {
          ++ok;
          std::lock_guard<std::mutex> lock(versions_mu);
          versions.insert(response.model_version());
        } else {
          ++failed;
          fprintf(stderr, "failed query: %d %s\n", status.error_code(),
                  status.error_message().c_str());
        }
        ++i;
      }
    });
  }
  auto stub = testing::MakeStub(port);
  for (int r = 0; r < 10; ++r) {
    v1::ReloadRequest reload;
    reload.set_bundle_path(r % 2 == 0 ? bundles.b : bundles.a);
    v1::ReloadResponse reloaded;
    grpc::Status status =
        stub->Reload(MakeContext("t").get(), reload, &reloaded);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  done = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(ok.load(), 20);
  EXPECT_EQ(versions.size(), 2u);  // Both bundles answered queries.
  (*server)->Shutdown();
}

std::string RunCommand(const std::string& command, int* exit_code) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    *exit_code = -1;
    return output;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  const int status = pclose(pipe);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return output;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ServerLifecycle, ServesOverTlsWithAGeneratedCertificate) {
  const std::string dir = Scratch("tls");
  int code = 0;
  const std::string out = RunCommand(
      absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
                   "-subj /CN=localhost -addext subjectAltName=DNS:localhost,"
                   "IP:127.0.0.1 -keyout ", dir, "/key.pem -out ", dir,
                   "/cert.pem"),
      &code);
  ASSERT_EQ(code, 0) << out;
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.bundle_path = SharedBundles().a;
  options.tls_cert_path = dir + "/cert.pem";
  options.tls_key_path = dir + "/key.pem";
  options.log_format = LogFormat::kNone;
  auto server = EmbedSearchServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string target = absl::StrCat("127.0.0.1:", (*server)->port());

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadWholeFile(dir + "/cert.pem");
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto tls_stub = v1::ImageSearch::NewStub(
      grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args));
  v1::GetInfoResponse info;
  grpc::Status status = tls_stub->GetInfo(MakeContext().get(), {}, &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(info.gallery_size(), 300u);

  // A plaintext client cannot talk to the TLS port.
  auto plain_stub = testing::MakeStub((*server)->port());
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(5));
  EXPECT_FALSE(plain_stub->GetInfo(context.get(), {}, &info).ok());
  (*server)->Shutdown();
}

TEST(ServerLifecycle, ReflectionClientListsServicesAndChecksHealth) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.bundle_path = SharedBundles().a;
  options.log_format = LogFormat::kNone;
  auto server = EmbedSearchServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  int code = 0;
  const std::string out = RunCommand(
      absl::StrCat(EMBEDSEARCH_PYTHON, " ", EMBEDSEARCH_SOURCE_DIR,
                   "/tests/server/reflection_check.py --port ",
                   (*server)->port(), " --protoc ", EMBEDSEARCH_PROTOC,
                   " --proto_dir ", EMBEDSEARCH_GRPC_PROTO_DIR, " --work_dir ",
                   Scratch("reflection")),
      &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("service embedsearch.v1.ImageSearch"));
  EXPECT_THAT(out, HasSubstr("service grpc.health.v1.Health"));
  EXPECT_THAT(out, HasSubstr("method embedsearch.v1.ImageSearch.Search"));
  EXPECT_THAT(out, HasSubstr("health SERVING"));
  (*server)->Shutdown();
}

TEST(ServerLifecycle, BinaryDrainsAndExitsZeroOnSigterm) {
  const std::string log = Scratch("bin") + "/stderr.log";
  const std::string binary =
      absl::StrCat(EMBEDSEARCH_BINARY_DIR, "/server/embedsearch-server");
  const std::string bundle_flag = "--bundle=" + SharedBundles().a;
  std::vector<std::string> args = {binary, bundle_flag,
                                   "--address=127.0.0.1:0",
                                   "--log_format=json", "--token=abc"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(),
                        environ),
            0);
  posix_spawn_file_actions_destroy(&actions);

  // The "listening" line carries the bound port; wait for the bundle too.
  int port = 0;
  std::string text;
  for (int i = 0; i < 600 && (port == 0 ||
                              text.find("bundle_loaded") == std::string::npos);
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    text = ReadWholeFile(log);
    const size_t at = text.find("port=");
    if (at != std::string::npos) {
      const size_t end = text.find_first_not_of("0123456789", at + 5);
      absl::SimpleAtoi(text.substr(at + 5, end - at - 5), &port);
    }
  }
  ASSERT_GT(port, 0) << text;
  ASSERT_THAT(text, HasSubstr("bundle_loaded")) << text;
  auto stub = testing::MakeStub(port);
  v1::SearchRequest request;
  request.set_image(GalleryPng(2));
  request.set_k(3);
  v1::SearchResponse response;
  ASSERT_TRUE(stub->Search(MakeContext().get(), request, &response).ok());
  EXPECT_EQ(response.hits_size(), 3);

  // A stream that is open when SIGTERM arrives is drained, not cut: it
  // keeps getting answers until the client closes it.
  auto stream_context = MakeContext();
  auto stream = stub->SearchStream(stream_context.get());
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  for (int i = 0; i < 200 && ReadWholeFile(log).find("shutting_down") ==
                                 std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_THAT(ReadWholeFile(log), HasSubstr("shutting_down"));
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.sequence(), 1u);
  EXPECT_EQ(response.hits_size(), 3);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  // New calls are refused while draining.
  v1::GetInfoResponse info;
  EXPECT_FALSE(stub->GetInfo(MakeContext().get(), {}, &info).ok());
  // An idle client channel notices the server's GOAWAY only at its next
  // backup poll (gRPC's default: 5 s), and the server waits for channels
  // to close; dropping ours lets the server finish at once.
  stream.reset();
  stub.reset();

  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  text = ReadWholeFile(log);
  // One JSON line per request with method, code, latency and peer.
  EXPECT_THAT(text, HasSubstr("\"method\":\"Search\",\"code\":\"OK\""));
  EXPECT_THAT(text, HasSubstr("\"latency_ms\":"));
  EXPECT_THAT(text, HasSubstr("\"peer\":\"ipv4:127.0.0.1:"));
  EXPECT_THAT(text, HasSubstr("\"event\":\"stopped\""));
}

}  // namespace
}  // namespace embedsearch
