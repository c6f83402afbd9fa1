#include "stats_table.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace referral::clients {
namespace {

constexpr int kColumns = 7;
using Row = std::array<std::string, kColumns>;

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
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

std::string FormatStatsTable(const referral::v1::GetQueueStatsResponse& stats) {
  if (stats.queues().empty()) return "no queues\n";
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
  std::array<size_t, kColumns> width{};
  for (const Row& row : rows) {
    for (int i = 0; i < kColumns; ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  std::string out;
  for (const Row& row : rows) {
    std::string line;
    for (int i = 0; i < kColumns; ++i) {
      if (i > 0) line.append("  ");
      // The queue name reads best left-aligned, numbers right-aligned.
      const std::string padding(width[i] - row[i].size(), ' ');
      line.append(i == 0 ? row[i] + padding : padding + row[i]);
    }
    // No trailing spaces: they upset diff and grep -x.
    line.erase(line.find_last_not_of(' ') + 1);
    out.append(line).append("\n");
  }
  return out;
}

}  // namespace referral::clients
