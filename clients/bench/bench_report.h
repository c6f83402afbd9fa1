// Shared by the side-by-side benchmark's clients (referral_bench_floor,
// referral_bench_rabbitmq, referral_bench_redis; deploy/bench.sh drives
// them): the command line with the payload file every system is sent, a
// latency recorder that is cheap enough to call per message from many
// threads, and the one JSON line per measured phase that deploy/bench.sh
// reads. The fields match referral_loadgen --json's "submit" summary, plus
// p99.9.
#ifndef REFERRAL_CLIENTS_BENCH_REPORT_H_
#define REFERRAL_CLIENTS_BENCH_REPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "latency_stats.h"

namespace referral::clients {

// Parses the command line and reads the payload file (--payload, defined
// here: the serialized fictitious referral, read whole). On failure prints
// why, after `program`, and returns nullopt: the client exits 2. An empty
// file is refused: every system must be sent real bytes.
std::optional<std::string> StartBench(int argc, char** argv,
                                      absl::string_view program);

using BenchSummary = LatencySummary;

// Latencies of one phase. Each worker thread keeps its own vector and
// merges it once at the end (Merge), so recording takes no lock.
class BenchRecorder {
 public:
  void Merge(const std::vector<double>& latencies_ms, int64_t failed);
  BenchSummary Summarize(absl::Duration wall) const;

 private:
  mutable absl::Mutex mu_;
  std::vector<double> latencies_ms_ ABSL_GUARDED_BY(mu_);
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
};

// {"system":"redis","phase":"intake","concurrency":16,"clients":16,
//  "ok":...,"failed":...,"seconds":...,"per_second":...,"p50_ms":...,
//  "p99_ms":...,"p999_ms":...,"max_ms":...}  (no trailing newline)
std::string BenchJsonLine(absl::string_view system, absl::string_view phase,
                          int concurrency, int clients,
                          const BenchSummary& summary);

// Prints the phase's JSON line on stdout. True when nothing failed and,
// for `expected` >= 0, exactly that many succeeded.
bool ReportBenchPhase(absl::string_view system, absl::string_view phase,
                      int concurrency, int clients, const BenchSummary& summary,
                      int64_t expected = -1);

// Splits `concurrency` requests in flight over `clients` connections as
// evenly as possible: the window of connection `index`.
int BenchWindow(int concurrency, int clients, int index);

// Runs body(0) ... body(count - 1) on threads of their own at once and
// returns the wall time until the last has finished.
absl::Duration RunOnThreads(int count, absl::FunctionRef<void(int)> body);

// Runs one intake phase of `n` messages: `clients` threads, thread i
// calling client(BenchWindow(concurrency, clients, i), recorder) and
// merging its latencies into `recorder`; prints the phase's JSON line to
// stdout. True when all `n` succeeded (trivially for none).
bool RunBenchIntake(
    absl::string_view system, int concurrency, int clients, int64_t n,
    absl::FunctionRef<void(int window, BenchRecorder* recorder)> client);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_BENCH_REPORT_H_
