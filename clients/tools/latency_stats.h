// Bookkeeping for the load generator: per operation (submit, claim,
// decide), how many calls succeeded and failed (by status code name),
// their latencies, and a summary with throughput and percentiles. Thread
// safe: gRPC callbacks record from many threads at once.
#ifndef REFERRAL_CLIENTS_LATENCY_STATS_H_
#define REFERRAL_CLIENTS_LATENCY_STATS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace referral::clients {

struct LatencySummary {
  int64_t ok = 0;
  int64_t failed = 0;
  double seconds = 0;     // wall time of the phase
  double per_second = 0;  // successful calls per second of wall time
  // Over successful calls only: a fast failure is not a fast success.
  double p50_ms = 0;
  double p99_ms = 0;
  // For the side-by-side benchmark (deploy/bench.sh); not in FormatSummary
  // or SummaryJson.
  double p999_ms = 0;
  double max_ms = 0;
  std::map<std::string, int64_t> errors;  // status code name -> count
};

class OperationStats {
 public:
  void Record(const absl::Status& status, absl::Duration latency);
  // Summarises everything recorded so far over a phase of `wall` length.
  LatencySummary Summarize(absl::Duration wall) const;

 private:
  mutable absl::Mutex mu_;
  std::vector<double> latencies_ms_ ABSL_GUARDED_BY(mu_);
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int64_t> errors_ ABSL_GUARDED_BY(mu_);
};

// The summary of a phase of length `wall`: the latencies of its successful
// calls (in any order) and the number that failed.
LatencySummary SummarizeLatencies(std::vector<double> latencies_ms,
                                  int64_t failed, absl::Duration wall);

// Nearest-rank percentile (p in 0..100) of `values`; 0 for none. Sorts.
double Percentile(std::vector<double> values, double p);

// "ok=10 failed=0 seconds=1.000 rate=10.0/s p50=1.2ms p99=3.4ms max=5.0ms".
std::string FormatSummary(const LatencySummary& summary);
// {"ok":10,"failed":0,"seconds":1.000,"per_second":10.0,"p50_ms":1.200,...,
//  "errors":{"UNAVAILABLE":2}}
std::string SummaryJson(const LatencySummary& summary);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_LATENCY_STATS_H_
