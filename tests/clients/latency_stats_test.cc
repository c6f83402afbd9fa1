// Latency bookkeeping for the load generator.
#include "latency_stats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace referral::clients {
namespace {

using ::testing::HasSubstr;

TEST(PercentileTest, NearestRank) {
  EXPECT_EQ(Percentile({}, 50), 0);
  EXPECT_EQ(Percentile({7}, 99), 7);
  std::vector<double> values;
  for (int i = 100; i >= 1; --i) values.push_back(i);  // unsorted on purpose
  EXPECT_EQ(Percentile(values, 50), 50);
  EXPECT_EQ(Percentile(values, 99), 99);
  EXPECT_EQ(Percentile(values, 100), 100);
  EXPECT_EQ(Percentile(values, 0), 1);
  EXPECT_EQ(Percentile({1, 2, 3}, 50), 2);
}

TEST(OperationStatsTest, CountsOutcomesAndSummarises) {
  OperationStats stats;
  for (int i = 1; i <= 100; ++i) {
    stats.Record(absl::OkStatus(), absl::Milliseconds(i));
  }
  stats.Record(absl::UnavailableError("down"), absl::Milliseconds(1));
  stats.Record(absl::UnavailableError("down"), absl::Milliseconds(1));
  stats.Record(absl::DeadlineExceededError("slow"), absl::Seconds(30));
  const LatencySummary s = stats.Summarize(absl::Seconds(2));
  EXPECT_EQ(s.ok, 100);
  EXPECT_EQ(s.failed, 3);
  EXPECT_DOUBLE_EQ(s.per_second, 50);
  EXPECT_DOUBLE_EQ(s.p50_ms, 50);
  EXPECT_DOUBLE_EQ(s.p99_ms, 99);
  EXPECT_DOUBLE_EQ(s.max_ms, 100);  // the 30 s failure is not a success
  EXPECT_EQ(s.errors.at("UNAVAILABLE"), 2);
  EXPECT_EQ(s.errors.at("DEADLINE_EXCEEDED"), 1);

  EXPECT_EQ(FormatSummary(s),
            "ok=100 failed=3 seconds=2.000 rate=50.0/s p50=50.00ms "
            "p99=99.00ms max=100.00ms");
  EXPECT_EQ(SummaryJson(s),
            "{\"ok\":100,\"failed\":3,\"seconds\":2.000,\"per_second\":50.0,"
            "\"p50_ms\":50.000,\"p99_ms\":99.000,\"max_ms\":100.000,"
            "\"errors\":{\"DEADLINE_EXCEEDED\":1,\"UNAVAILABLE\":2}}");
}

TEST(OperationStatsTest, EmptyAndConcurrent) {
  OperationStats stats;
  LatencySummary s = stats.Summarize(absl::ZeroDuration());
  EXPECT_EQ(s.ok, 0);
  EXPECT_EQ(s.per_second, 0);
  EXPECT_THAT(SummaryJson(s), HasSubstr("\"errors\":{}"));

  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        stats.Record(absl::OkStatus(), absl::Microseconds(i));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(stats.Summarize(absl::Seconds(1)).ok, 8000);
}

}  // namespace
}  // namespace referral::clients
