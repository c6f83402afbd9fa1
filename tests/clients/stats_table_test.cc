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

google::protobuf::Duration Seconds(int64_t seconds) {
  google::protobuf::Duration d;
  d.set_seconds(seconds);
  return d;
}

TEST(FormatStatsTableTest, TimelinessTableWhenTheBrokerReportsIt) {
  v1::GetQueueStatsResponse stats;
  v1::QueueStats* triage = stats.add_queues();
  *triage = Queue("ifd-triage", 2, 0, 0, 60, 0, 0);
  triage->set_decisions_in_window(41);
  *triage->mutable_time_to_decision_p50() = Seconds(3 * 3600 + 12 * 60);
  *triage->mutable_time_to_decision_p90() = Seconds(20 * 3600);
  *triage->mutable_time_to_decision_p99() = Seconds(50 * 3600);
  *triage->mutable_decision_window() = Seconds(28 * 86400);
  triage->set_notices_last_24h(3);
  v1::QueueStats* edt = stats.add_queues();
  *edt = Queue("edt-out-of-hours", 0, 0, 0, 0, 0, 0);
  *edt->mutable_decision_window() = Seconds(28 * 86400);
  EXPECT_EQ(
      FormatStatsTable(stats),
      "QUEUE             READY  CLAIMED  DEAD  OLDEST_READY  OVERDUE  DUE_1H\n"
      "ifd-triage            2        0     0         1m00s        0       "
      "0\n"
      "edt-out-of-hours      0        0     0             -        0       "
      "0\n"
      "TOTAL                 2        0     0         1m00s        0       "
      "0\n"
      "\n"
      "QUEUE             DECIDED_28d  TTD_P50  TTD_P90  TTD_P99  NOTICES_24H\n"
      "ifd-triage                 41    3h12m   20h00m    2d02h            3\n"
      "edt-out-of-hours            0        -        -        -            "
      "0\n");
}

TEST(FormatStatsTableTest, ReferrerFeedbackRowsPerAgency) {
  v1::GetQueueStatsResponse stats;
  *stats.add_queues() = Queue("ifd-triage", 0, 0, 0, 0, 0, 0);
  *stats.mutable_outcome_ack_overdue_after() = Seconds(24 * 3600);
  v1::AgencyFeedback* police = stats.add_feedback();
  police->set_agency("cambs-police");
  police->set_unacknowledged_count(3);
  police->set_overdue_count(1);
  *police->mutable_oldest_unacknowledged_age() = Seconds(26 * 3600);
  EXPECT_EQ(FormatStatsTable(stats),
            "QUEUE       READY  CLAIMED  DEAD  OLDEST_READY  OVERDUE  DUE_1H\n"
            "ifd-triage      0        0     0             -        0       0\n"
            "\n"
            "AGENCY        UNACKED  OVERDUE_24h  OLDEST_UNACKED\n"
            "cambs-police        3            1           1d02h\n");

  // Feedback alone (no queues configured yet) still shows.
  stats.clear_queues();
  EXPECT_EQ(FormatStatsTable(stats),
            "AGENCY        UNACKED  OVERDUE_24h  OLDEST_UNACKED\n"
            "cambs-police        3            1           1d02h\n");
}

TEST(FormatStatsTableTest, EmptyResponse) {
  EXPECT_EQ(FormatStatsTable(v1::GetQueueStatsResponse()), "no queues\n");
}

}  // namespace
}  // namespace referral::clients
