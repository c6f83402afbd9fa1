#include "stats_table.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace referral::clients {
namespace {

using Row = std::vector<std::string>;

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// Aligns the rows (all of the same width) into lines: the first column (a
// name) left-aligned, numbers right-aligned, two spaces between columns.
std::string RenderTable(const std::vector<Row>& rows) {
  std::vector<size_t> width(rows.front().size(), 0);
  for (const Row& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  std::string out;
  for (const Row& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line.append("  ");
      const std::string padding(width[i] - row[i].size(), ' ');
      line.append(i == 0 ? row[i] + padding : padding + row[i]);
    }
    // No trailing spaces: they upset diff and grep -x.
    line.erase(line.find_last_not_of(' ') + 1);
    out.append(line).append("\n");
  }
  return out;
}

std::string QueueTable(const referral::v1::GetQueueStatsResponse& stats) {
  std::vector<Row> rows;
  rows.push_back({"QUEUE", "READY", "CLAIMED", "DEAD", "OLDEST_READY",
                  "OVERDUE", "DUE_1H"});
  int64_t ready = 0, claimed = 0, dead = 0, overdue = 0, due_soon = 0;
  absl::Duration oldest = absl::ZeroDuration();
  for (const referral::v1::QueueStats& q : stats.queues()) {
    const absl::Duration age = FromProto(q.oldest_ready_age());
    rows.push_back({q.queue(), absl::StrCat(q.ready_count()),
                    absl::StrCat(q.claimed_count()),
                    absl::StrCat(q.dead_letter_count()),
                    q.ready_count() > 0 ? FormatAge(age) : "-",
                    absl::StrCat(q.overdue_count()),
                    absl::StrCat(q.due_within_hour_count())});
    ready += q.ready_count();
    claimed += q.claimed_count();
    dead += q.dead_letter_count();
    overdue += q.overdue_count();
    due_soon += q.due_within_hour_count();
    if (q.ready_count() > 0) oldest = std::max(oldest, age);
  }
  if (stats.queues_size() > 1) {
    rows.push_back({"TOTAL", absl::StrCat(ready), absl::StrCat(claimed),
                    absl::StrCat(dead), ready > 0 ? FormatAge(oldest) : "-",
                    absl::StrCat(overdue), absl::StrCat(due_soon)});
  }
  return RenderTable(rows);
}

// Percentiles of different queues do not add up, so this table has no
// TOTAL row.
std::string TimelinessTable(const referral::v1::GetQueueStatsResponse& stats,
                            absl::Duration window) {
  std::vector<Row> rows;
  rows.push_back({"QUEUE", absl::StrCat("DECIDED_", FormatWindow(window)),
                  "TTD_P50", "TTD_P90", "TTD_P99", "NOTICES_24H"});
  for (const referral::v1::QueueStats& q : stats.queues()) {
    auto percentile = [&q](const google::protobuf::Duration& d) {
      return q.decisions_in_window() > 0 ? FormatAge(FromProto(d))
                                         : std::string("-");
    };
    rows.push_back({q.queue(), absl::StrCat(q.decisions_in_window()),
                    percentile(q.time_to_decision_p50()),
                    percentile(q.time_to_decision_p90()),
                    percentile(q.time_to_decision_p99()),
                    absl::StrCat(q.notices_last_24h())});
  }
  return RenderTable(rows);
}

std::string FeedbackTable(const referral::v1::GetQueueStatsResponse& stats) {
  std::vector<Row> rows;
  rows.push_back(
      {"AGENCY", "UNACKED",
       absl::StrCat("OVERDUE_",
                    FormatWindow(FromProto(stats.outcome_ack_overdue_after()))),
       "OLDEST_UNACKED"});
  for (const referral::v1::AgencyFeedback& f : stats.feedback()) {
    rows.push_back({f.agency(), absl::StrCat(f.unacknowledged_count()),
                    absl::StrCat(f.overdue_count()),
                    FormatAge(FromProto(f.oldest_unacknowledged_age()))});
  }
  return RenderTable(rows);
}

}  // namespace

std::string FormatAge(absl::Duration age) {
  if (age < absl::Seconds(1)) return "0s";
  const int64_t total = absl::ToInt64Seconds(age);
  const int64_t days = total / 86400;
  const int64_t hours = (total % 86400) / 3600;
  const int64_t minutes = (total % 3600) / 60;
  const int64_t seconds = total % 60;
  if (total < 60) return absl::StrCat(seconds, "s");
  if (total < 3600) return absl::StrFormat("%dm%02ds", minutes, seconds);
  if (total < 86400) return absl::StrFormat("%dh%02dm", hours, minutes);
  return absl::StrFormat("%dd%02dh", days, hours);
}

std::string FormatWindow(absl::Duration window) {
  if (window > absl::ZeroDuration()) {
    // A day or a day and a half reads better in hours ("24h", "36h").
    if (window >= absl::Hours(48) &&
        window % absl::Hours(24) == absl::ZeroDuration()) {
      return absl::StrCat(window / absl::Hours(24), "d");
    }
    if (window % absl::Hours(1) == absl::ZeroDuration()) {
      return absl::StrCat(window / absl::Hours(1), "h");
    }
  }
  return FormatAge(window);
}

std::string FormatStatsTable(const referral::v1::GetQueueStatsResponse& stats) {
  if (stats.queues().empty() && stats.feedback().empty()) return "no queues\n";
  std::vector<std::string> tables;
  if (!stats.queues().empty()) {
    tables.push_back(QueueTable(stats));
    // A broker that reports timeliness sets the window on every queue.
    absl::Duration window = absl::ZeroDuration();
    for (const referral::v1::QueueStats& q : stats.queues()) {
      window = std::max(window, FromProto(q.decision_window()));
    }
    if (window > absl::ZeroDuration()) {
      tables.push_back(TimelinessTable(stats, window));
    }
  }
  if (!stats.feedback().empty()) tables.push_back(FeedbackTable(stats));
  std::string out;
  for (const std::string& table : tables) {
    if (!out.empty()) out.append("\n");
    out.append(table);
  }
  return out;
}

}  // namespace referral::clients
