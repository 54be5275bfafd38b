// Small server parts without the network: auth, path guard, stats, logs.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "core/util/json.h"
#include "gtest/gtest.h"
#include "server/auth.h"
#include "server/batch_queue.h"
#include "server/bundle_path.h"
#include "server/compute_slots.h"
#include "server/request_log.h"
#include "server/stats.h"
#include "tests/server/test_bundle.h"

namespace embedsearch {
namespace {

using ::testing::HasSubstr;

TEST(ServerAuth, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
}

TEST(ServerAuth, BearerTokenIsCheckedOnlyWhenConfigured) {
  EXPECT_TRUE(CheckBearerToken("", nullptr).ok());
  EXPECT_TRUE(absl::IsUnauthenticated(CheckBearerToken("t", nullptr)));
  absl::string_view right = "Bearer t";
  absl::string_view wrong = "Bearer u";
  absl::string_view scheme = "Token t";
  EXPECT_TRUE(CheckBearerToken("t", &right).ok());
  EXPECT_TRUE(absl::IsUnauthenticated(CheckBearerToken("t", &wrong)));
  EXPECT_TRUE(absl::IsUnauthenticated(CheckBearerToken("t", &scheme)));
  // The message never echoes the expected token.
  EXPECT_THAT(CheckBearerToken("secret", &wrong).message(),
              ::testing::Not(HasSubstr("secret")));
}

TEST(ServerBundlePath, StaysInsideAllowedRoots) {
  const std::string root = testing::MakeTempDir("bundle-path");
  const std::string inside = root + "/bundles/a";
  ASSERT_EQ(mkdir((root + "/bundles").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(inside.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root + "/other").c_str(), 0755), 0);
  ASSERT_EQ(symlink("/etc", (root + "/bundles/escape").c_str()), 0);
  const std::vector<std::string> roots = {root + "/bundles"};

  auto ok = ResolveBundlePath(inside, roots);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, inside);
  auto dotted = ResolveBundlePath(root + "/bundles/./a/../a", roots);
  ASSERT_TRUE(dotted.ok());
  EXPECT_EQ(*dotted, inside);

  EXPECT_TRUE(absl::IsPermissionDenied(
      ResolveBundlePath(root + "/bundles/../other", roots).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      ResolveBundlePath(root + "/bundles/escape", roots).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      ResolveBundlePath(root + "/bundlesX", {root + "/bundles"}).status()) ||
      absl::IsNotFound(
      ResolveBundlePath(root + "/bundlesX", {root + "/bundles"}).status()));
  EXPECT_TRUE(
      absl::IsNotFound(ResolveBundlePath(root + "/bundles/b", roots).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveBundlePath("", roots).status()));
  auto disabled = ResolveBundlePath(inside, {});
  EXPECT_TRUE(absl::IsPermissionDenied(disabled.status()));
  EXPECT_THAT(disabled.status().message(), HasSubstr("--allowed_bundle_roots"));
}

TEST(ServerStats, PercentilesAreOrderedAndCountErrors) {
  RequestStats stats;
  for (int i = 1; i <= 100; ++i) stats.Record("Search", i, i % 10 != 0);
  stats.Record("Encode", 3, true);
  auto snapshot = stats.Snapshot();
  ASSERT_EQ(snapshot.size(), 2u);
  EXPECT_EQ(snapshot[0].method(), "Encode");
  const auto& s = snapshot[1];
  EXPECT_EQ(s.method(), "Search");
  EXPECT_EQ(s.count(), 100u);
  EXPECT_EQ(s.errors(), 10u);
  EXPECT_DOUBLE_EQ(s.p50_ms(), 50);
  EXPECT_DOUBLE_EQ(s.p90_ms(), 90);
  EXPECT_DOUBLE_EQ(s.p99_ms(), 99);
  EXPECT_DOUBLE_EQ(s.max_ms(), 100);
}

TEST(ServerStats, WindowKeepsMemoryFlatButMaxIsLifetime) {
  RequestStats stats;
  stats.Record("Search", 1000, true);
  for (size_t i = 0; i < RequestStats::kWindow; ++i) {
    stats.Record("Search", 1, true);
  }
  auto s = stats.Snapshot()[0];
  EXPECT_DOUBLE_EQ(s.p99_ms(), 1);  // The outlier left the window...
  EXPECT_DOUBLE_EQ(s.max_ms(), 1000);  // ...but not the lifetime max.
  EXPECT_EQ(s.count(), RequestStats::kWindow + 1);
}

// Whatever bytes a peer or message holds, the JSON line parses back to them
// (control characters escaped, quotes too; bad UTF-8 replaced, not thrown).
TEST(ServerLog, JsonLineParsesBackWithAwkwardBytes) {
  const std::string message = "line\nbreak\ttab \x01 \"quoted\" back\\slash";
  RequestLogEntry entry{"Search", absl::NotFoundError(message), 2.25,
                        "ipv6:[::1]:7", "bytes=\xff\xfe"};
  const Json parsed = Json::parse(FormatRequestLog(LogFormat::kJson, entry));
  EXPECT_EQ(parsed["event"], "request");
  EXPECT_EQ(parsed["code"], "NOT_FOUND");
  EXPECT_EQ(parsed["message"], message);
  EXPECT_DOUBLE_EQ(parsed["latency_ms"].get<double>(), 2.25);
  EXPECT_EQ(parsed["peer"], "ipv6:[::1]:7");
  EXPECT_EQ(parsed["detail"], "bytes=\xef\xbf\xbd\xef\xbf\xbd");  // U+FFFD twice
}

TEST(ServerLog, JsonAndTextLinesCarryMethodCodeLatencyPeer) {
  RequestLogEntry entry{"Search", absl::InvalidArgumentError("k \"0\""),
                        1.5, "ipv4:127.0.0.1:5", ""};
  const std::string json = FormatRequestLog(LogFormat::kJson, entry);
  EXPECT_THAT(json, HasSubstr("\"method\":\"Search\""));
  EXPECT_THAT(json, HasSubstr("\"code\":\"INVALID_ARGUMENT\""));
  EXPECT_THAT(json, HasSubstr("\"latency_ms\":1.5"));
  EXPECT_THAT(json, HasSubstr("\"peer\":\"ipv4:127.0.0.1:5\""));
  EXPECT_THAT(json, HasSubstr("\"message\":\"k \\\"0\\\"\""));
  const std::string text = FormatRequestLog(LogFormat::kText, entry);
  EXPECT_THAT(text, HasSubstr("method=Search code=INVALID_ARGUMENT "
                              "latency_ms=1.500 peer=ipv4:127.0.0.1:5"));
  LogFormat f;
  EXPECT_TRUE(ParseLogFormat("json", &f));
  EXPECT_EQ(f, LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("xml", &f));
}

TEST(ServerComputeSlots, QueuedCallGivesUpWithTheStopStatus) {
  ComputeSlots slots(1);
  auto first = slots.Acquire({});
  ASSERT_TRUE(first.ok());
  int polls = 0;
  auto second = slots.Acquire([&polls](absl::string_view stage) {
    return ++polls < 3 ? absl::OkStatus()
                       : absl::DeadlineExceededError(stage);
  });
  EXPECT_TRUE(absl::IsDeadlineExceeded(second.status()));
  EXPECT_EQ(polls, 3);
}

TEST(ServerComputeSlots, TryAcquireTakesOnlyAFreeSlotAndNeverWaits) {
  ComputeSlots slots(1);
  std::optional<ComputeSlots::Lease> first = slots.TryAcquire();
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(slots.TryAcquire().has_value());
  first.reset();
  EXPECT_TRUE(slots.TryAcquire().has_value());
}

TEST(BatchQueue, HandlesEveryItemOnceInOrderWithinBoundedBatches) {
  std::mutex mu;
  std::vector<int> seen;
  std::vector<size_t> sizes;
  std::atomic<bool> release{false};
  {
    // One worker, held in its first batch until everything is queued, so
    // the rest must come in batches of at most 4, in submission order.
    BatchQueue<int> queue(1, 4, [&](std::vector<int>& batch) {
      while (!release.load()) std::this_thread::yield();
      std::unique_lock lock(mu);
      sizes.push_back(batch.size());
      seen.insert(seen.end(), batch.begin(), batch.end());
    });
    for (int i = 0; i < 11; ++i) queue.Submit(i);
    release = true;
  }  // The destructor handles what is still queued.
  ASSERT_EQ(seen.size(), 11u);
  for (int i = 0; i < 11; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_GT(sizes.size(), 1u);
  for (size_t size : sizes) EXPECT_LE(size, 4u);
  EXPECT_EQ(*std::max_element(sizes.begin(), sizes.end()), 4u)
      << "items queued behind a busy worker should be taken together";
}

TEST(BatchQueue, ManyProducersLoseNothing) {
  std::atomic<int> handled{0}, sum{0};
  {
    BatchQueue<int> queue(2, 8, [&](std::vector<int>& batch) {
      for (int v : batch) sum += v;
      handled += static_cast<int>(batch.size());
    });
    std::vector<std::thread> producers;
    for (int t = 0; t < 4; ++t) {
      producers.emplace_back([&queue, t] {
        for (int i = 1; i <= 500; ++i) queue.Submit(t * 1000 + i);
      });
    }
    for (auto& p : producers) p.join();
  }
  EXPECT_EQ(handled.load(), 2000);
  int want = 0;
  for (int t = 0; t < 4; ++t) {
    for (int i = 1; i <= 500; ++i) want += t * 1000 + i;
  }
  EXPECT_EQ(sum.load(), want);
}

}  // namespace
}  // namespace embedsearch
