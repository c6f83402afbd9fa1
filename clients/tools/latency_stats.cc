#include "latency_stats.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "broker_channel.h"

namespace referral::clients {

void OperationStats::Record(const absl::Status& status,
                            absl::Duration latency) {
  absl::MutexLock lock(&mu_);
  if (status.ok()) {
    latencies_ms_.push_back(absl::ToDoubleMilliseconds(latency));
  } else {
    ++failed_;
    ++errors_[StatusCodeName(status.code())];
  }
}

LatencySummary OperationStats::Summarize(absl::Duration wall) const {
  std::vector<double> latencies;
  int64_t failed = 0;
  std::map<std::string, int64_t> errors;
  {
    absl::MutexLock lock(&mu_);
    latencies = latencies_ms_;
    failed = failed_;
    errors = errors_;
  }
  LatencySummary summary =
      SummarizeLatencies(std::move(latencies), failed, wall);
  summary.errors = std::move(errors);
  return summary;
}

namespace {

// Nearest rank in `sorted`: the smallest value with at least p% of values
// <= it.
double NearestRank(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  const size_t index = static_cast<size_t>(std::clamp(
                           rank, 1.0, static_cast<double>(sorted.size()))) -
                       1;
  return sorted[index];
}

}  // namespace

LatencySummary SummarizeLatencies(std::vector<double> latencies_ms,
                                  int64_t failed, absl::Duration wall) {
  std::sort(latencies_ms.begin(), latencies_ms.end());
  LatencySummary summary;
  summary.ok = static_cast<int64_t>(latencies_ms.size());
  summary.failed = failed;
  summary.seconds = absl::ToDoubleSeconds(wall);
  summary.per_second = summary.seconds > 0
                           ? static_cast<double>(summary.ok) / summary.seconds
                           : 0;
  summary.p50_ms = NearestRank(latencies_ms, 50);
  summary.p99_ms = NearestRank(latencies_ms, 99);
  summary.p999_ms = NearestRank(latencies_ms, 99.9);
  summary.max_ms = latencies_ms.empty() ? 0 : latencies_ms.back();
  return summary;
}

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return NearestRank(values, p);
}

std::string FormatSummary(const LatencySummary& s) {
  return absl::StrFormat(
      "ok=%d failed=%d seconds=%.3f rate=%.1f/s p50=%.2fms p99=%.2fms "
      "max=%.2fms",
      s.ok, s.failed, s.seconds, s.per_second, s.p50_ms, s.p99_ms, s.max_ms);
}

std::string SummaryJson(const LatencySummary& s) {
  std::vector<std::string> errors;
  for (const auto& [code, count] : s.errors) {
    // Code names are [A-Z_] only: no escaping needed.
    errors.push_back(absl::StrCat("\"", code, "\":", count));
  }
  return absl::StrFormat(
      "{\"ok\":%d,\"failed\":%d,\"seconds\":%.3f,\"per_second\":%.1f,"
      "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"errors\":{%s}}",
      s.ok, s.failed, s.seconds, s.per_second, s.p50_ms, s.p99_ms, s.max_ms,
      absl::StrJoin(errors, ","));
}

}  // namespace referral::clients
