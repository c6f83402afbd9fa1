// Formats the broker's queue statistics (Operations.GetQueueStats) as a
// fixed-width table for people watching the front door: one row per queue
// and a total, columns aligned, no personal data (the response has none).
#ifndef REFERRAL_CLIENTS_STATS_TABLE_H_
#define REFERRAL_CLIENTS_STATS_TABLE_H_

#include <string>

#include "absl/time/time.h"
#include "referral/v1/broker.pb.h"

namespace referral::clients {

// A compact age for a table cell: "0s", "42s", "4m12s", "3h05m", "2d04h".
// Negative durations (clock skew) show as "0s".
std::string FormatAge(absl::Duration age);

// Header, one row per queue in the order given, then a TOTAL row when there
// is more than one queue; each line ends in '\n'. Columns: QUEUE, READY,
// CLAIMED, DEAD, OLDEST_READY ("-" when nothing is ready), OVERDUE, DUE_1H.
// "no queues\n" for an empty response.
std::string FormatStatsTable(const referral::v1::GetQueueStatsResponse& stats);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_STATS_TABLE_H_
