// Formats the broker's queue statistics (Operations.GetQueueStats) as
// fixed-width tables for people watching the front door: columns aligned,
// no personal data (the response has none).
#ifndef REFERRAL_CLIENTS_STATS_TABLE_H_
#define REFERRAL_CLIENTS_STATS_TABLE_H_

#include <string>

#include "absl/time/time.h"
#include "referral/v1/broker.pb.h"

namespace referral::clients {

// A compact age for a table cell: "0s", "42s", "4m12s", "3h05m", "2d04h".
// Negative durations (clock skew) show as "0s".
std::string FormatAge(absl::Duration age);

// A window or threshold for a column name: whole days from two days up
// ("28d"), else whole hours ("24h", "36h"), else FormatAge.
std::string FormatWindow(absl::Duration window);

// Up to three tables, each line ending in '\n', separated by a blank line:
//
// 1. Always: header, one row per queue in the order given, then a TOTAL row
//    when there is more than one queue. Columns: QUEUE, READY, CLAIMED,
//    DEAD, OLDEST_READY ("-" when nothing is ready), OVERDUE, DUE_1H.
// 2. Timeliness, when the broker reports it (any queue has a
//    decision_window): QUEUE, DECIDED_<window> (decisions in the window),
//    TTD_P50, TTD_P90, TTD_P99 (time to decision, "-" with no decisions),
//    NOTICES_24H.
// 3. Referrer feedback, when some agency has unacknowledged outcomes:
//    AGENCY, UNACKED, OVERDUE_<threshold>, OLDEST_UNACKED.
//
// "no queues\n" for a response with neither queues nor feedback.
std::string FormatStatsTable(const referral::v1::GetQueueStatsResponse& stats);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_STATS_TABLE_H_
