// SearchService driven from many threads in-process, with no gRPC in
// between: searches of every kind run while other threads add and remove
// images and reload between two bundles. This is the test ThreadSanitizer
// checks in CI (scripts/test): Debian's gRPC and Abseil are not built with
// TSan, so the gRPC-level server tests report races inside gRPC's own
// synchronisation; here every lock is ours (std::mutex, visible to TSan)
// and the only third-party code is FAISS/OpenMP (suppressed in tsan.supp).
#include <atomic>
#include <future>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/service.h"
#include "tests/server/test_bundle.h"

namespace embedsearch {
namespace {

using testing::GalleryPng;

TEST(ServiceConcurrency, SearchesAddsRemovesAndReloadsInterleaveSafely) {
  const std::string root = testing::MakeTempDir("service-concurrency");
  const std::string a = root + "/a", b = root + "/b";
  ASSERT_TRUE(testing::MakeBundle(a, 21).ok());
  ASSERT_TRUE(testing::MakeBundle(b, 22, "HNSW16").ok());

  ServiceOptions options;
  options.compute_threads = 2;
  options.allowed_bundle_roots = {root};
  SearchService service(options);
  ASSERT_TRUE(service.LoadBundle(a).ok());
  const std::string version_a = service.bundle()->manifest().model_version();

  std::atomic<bool> done{false};
  std::atomic<int> searches{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !done.load(); ++i) {
        v1::SearchRequest request;
        if (i % 2 == 0) {
          request.set_image(GalleryPng((t * 17 + i) % 300));
        } else {
          request.mutable_embedding()->mutable_values()->Resize(64, 0.125f);
        }
        request.set_k(5);
        request.set_include_images(i % 3 == 0);
        auto response = service.Search(request);
        // The writer below removes one item at a time; a hit removed
        // between the index lookup and the catalog read is dropped
        // (core/index/gallery.h), so 4 hits are fine, fewer are not.
        if (!response.ok() || response->hits_size() < 4) {
          ++failures;
          std::fprintf(stderr, "search failed: %s\n",
                       response.status().ToString().c_str());
        }
        ++searches;
      }
    });
  }
  // A writer: add an image, read it back, remove it (on whichever bundle
  // is current; a reload in between may make the id unknown, which is a
  // clean NotFound, never a crash or a torn read).
  std::atomic<int> adds{0};
  threads.emplace_back([&] {
    for (int i = 0; !done.load(); ++i) {
      v1::AddImagesRequest add;
      v1::NewImage* image = add.add_images();
      image->set_image(GalleryPng(i % 300));
      image->set_label_name("added");
      image->set_source("concurrency-test");
      auto added = service.AddImages(add);
      if (!added.ok()) {
        ++failures;
        std::fprintf(stderr, "add failed: %s\n",
                     added.status().ToString().c_str());
        continue;
      }
      ++adds;
      v1::GetImageRequest get;
      get.set_id(added->ids(0));
      (void)service.GetImage(get);
      v1::RemoveImagesRequest remove;
      remove.add_ids(added->ids(0));
      (void)service.RemoveImages(remove);
      (void)service.GetInfo(v1::GetInfoRequest());
    }
  });

  std::set<std::string> versions;
  for (int r = 0; r < 6; ++r) {
    v1::ReloadRequest reload;
    reload.set_bundle_path(r % 2 == 0 ? b : a);
    auto reloaded = service.Reload(reload);
    ASSERT_TRUE(reloaded.ok()) << reloaded.status();
    versions.insert(reloaded->model_version());
    // A bad bundle is refused while the current one keeps serving.
    reload.set_bundle_path(root + "/missing");
    EXPECT_FALSE(service.Reload(reload).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  done = true;
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(searches.load(), 10);
  EXPECT_GT(adds.load(), 0);
  EXPECT_EQ(versions.size(), 2u);
  EXPECT_EQ(service.bundle()->manifest().model_version(), version_a);
}

// Concurrent image queries are encoded together in one batch; each caller
// must still get the answer to its own query: the same hits as when it asks
// alone (distances equal up to the float rounding of a batched product).
TEST(ServiceConcurrency, BatchedQueriesEachGetTheirOwnAnswer) {
  const std::string root = testing::MakeTempDir("service-batching");
  ASSERT_TRUE(testing::MakeBundle(root + "/a", 23).ok());
  ServiceOptions options;
  options.compute_threads = 2;
  SearchService service(options);
  ASSERT_TRUE(service.LoadBundle(root + "/a").ok());

  constexpr int kThreads = 16, kQueries = 15;
  auto query = [](int image) {
    v1::SearchRequest request;
    request.set_image(GalleryPng(image));
    request.set_k(3);
    return request;
  };
  std::vector<std::vector<v1::SearchResponse>> alone(kThreads), together(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kQueries; ++i) {
      auto response = service.Search(query(t * kQueries + i));
      ASSERT_TRUE(response.ok()) << response.status();
      alone[t].push_back(*response);
    }
  }
  EXPECT_EQ(service.largest_search_batch(), 1) << "one caller: nothing to batch";
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kQueries; ++i) {
        auto response = service.Search(query(t * kQueries + i));
        together[t].push_back(response.ok() ? *response : v1::SearchResponse());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_GT(service.largest_search_batch(), 1) << "16 callers should have been batched";
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kQueries; ++i) {
      const v1::SearchResponse& want = alone[t][i];
      const v1::SearchResponse& got = together[t][i];
      ASSERT_EQ(got.hits_size(), want.hits_size()) << "thread " << t << " query " << i;
      for (int h = 0; h < want.hits_size(); ++h) {
        EXPECT_EQ(got.hits(h).id(), want.hits(h).id()) << "thread " << t << " query " << i;
        EXPECT_NEAR(got.hits(h).distance(), want.hits(h).distance(), 1e-4)
            << "thread " << t << " query " << i;
      }
    }
  }
}

TEST(ServiceConcurrency, LoneSearchRunsOnTheCallerBusyOneOnAWorker) {
  const std::string root = testing::MakeTempDir("service-lone");
  ASSERT_TRUE(testing::MakeBundle(root + "/a", 24).ok());
  ServiceOptions options;
  options.compute_threads = 2;
  SearchService service(options);
  ASSERT_TRUE(service.LoadBundle(root + "/a").ok());
  v1::SearchRequest request;
  request.set_image(GalleryPng(5));
  request.set_k(3);

  // Idle: answered on the calling thread before SearchAsync returns.
  std::thread::id answered_on;
  bool answered = false;
  service.SearchAsync(&request, {}, [&](absl::StatusOr<v1::SearchResponse> r) {
    EXPECT_TRUE(r.ok()) << r.status();
    answered_on = std::this_thread::get_id();
    answered = true;
  });
  EXPECT_TRUE(answered);
  EXPECT_EQ(answered_on, std::this_thread::get_id());

  // One search in flight (its `done` held open): the next goes to a worker.
  std::promise<void> release, holding;
  std::thread holder([&] {
    service.SearchAsync(&request, {}, [&](absl::StatusOr<v1::SearchResponse>) {
      holding.set_value();
      release.get_future().wait();
    });
  });
  holding.get_future().wait();
  std::promise<std::thread::id> second;
  service.SearchAsync(&request, {}, [&](absl::StatusOr<v1::SearchResponse> r) {
    EXPECT_TRUE(r.ok()) << r.status();
    second.set_value(std::this_thread::get_id());
  });
  const std::thread::id worker = second.get_future().get();
  release.set_value();
  holder.join();
  EXPECT_NE(worker, std::this_thread::get_id());
}

}  // namespace
}  // namespace embedsearch
