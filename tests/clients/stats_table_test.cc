// The ops stats table: aligned columns, totals, readable ages.
#include "stats_table.h"

#include <gtest/gtest.h>

namespace referral::clients {
namespace {

v1::QueueStats Queue(const std::string& name, int64_t ready, int64_t claimed,
                     int64_t dead, int64_t oldest_seconds, int64_t overdue,
                     int64_t due_soon) {
  v1::QueueStats q;
  q.set_queue(name);
  q.set_ready_count(ready);
  q.set_claimed_count(claimed);
  q.set_dead_letter_count(dead);
  q.mutable_oldest_ready_age()->set_seconds(oldest_seconds);
  q.set_overdue_count(overdue);
  q.set_due_within_hour_count(due_soon);
  return q;
}

TEST(FormatAgeTest, PicksTwoUnits) {
  EXPECT_EQ(FormatAge(absl::ZeroDuration()), "0s");
  EXPECT_EQ(FormatAge(absl::Milliseconds(999)), "0s");
  EXPECT_EQ(FormatAge(-absl::Seconds(5)), "0s");
  EXPECT_EQ(FormatAge(absl::Seconds(42)), "42s");
  EXPECT_EQ(FormatAge(absl::Seconds(252)), "4m12s");
  EXPECT_EQ(FormatAge(absl::Minutes(185)), "3h05m");
  EXPECT_EQ(FormatAge(absl::Hours(52) + absl::Minutes(59)), "2d04h");
  EXPECT_EQ(FormatAge(absl::Hours(24 * 400)), "400d00h");
}

TEST(FormatStatsTableTest, AlignsColumnsAndAddsTotal) {
  v1::GetQueueStatsResponse stats;
  *stats.add_queues() = Queue("ifd-triage", 12, 3, 1, 7500, 2, 4);
  *stats.add_queues() = Queue("edt", 0, 0, 0, 0, 0, 0);
  *stats.add_queues() = Queue("ifd-urgent", 1, 1, 0, 30, 0, 1);
  EXPECT_EQ(
      FormatStatsTable(stats),
      "QUEUE       READY  CLAIMED  DEAD  OLDEST_READY  OVERDUE  DUE_1H\n"
      "ifd-triage     12        3     1         2h05m        2       4\n"
      "edt             0        0     0             -        0       0\n"
      "ifd-urgent      1        1     0           30s        0       1\n"
      "TOTAL          13        4     1         2h05m        2       5\n");
}

TEST(FormatStatsTableTest, SingleQueueHasNoTotalAndWideNumbersWiden) {
  v1::GetQueueStatsResponse stats;
  *stats.add_queues() = Queue("q", 1234567890, 0, 0, 90000, 0, 0);
  EXPECT_EQ(
      FormatStatsTable(stats),
      "QUEUE       READY  CLAIMED  DEAD  OLDEST_READY  OVERDUE  DUE_1H\n"
      "q      1234567890        0     0         1d01h        0       0\n");
}

TEST(FormatStatsTableTest, EmptyResponse) {
  EXPECT_EQ(FormatStatsTable(v1::GetQueueStatsResponse()), "no queues\n");
}

}  // namespace
}  // namespace referral::clients
