// What a load run of referral_loadgen is asked to do (LoadOptions) and
// what it found (LoadReport), and the report of it: a block of text for
// people, one JSON line for deploy/bench.sh.
#ifndef REFERRAL_CLIENTS_LOAD_REPORT_H_
#define REFERRAL_CLIENTS_LOAD_REPORT_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/time/time.h"
#include "latency_stats.h"
#include "referral/v1/referral.pb.h"

namespace referral::clients {

struct LoadOptions {
  int64_t n = 10000;     // referrals to submit
  int concurrency = 64;  // submission calls in flight at once
  // Referrals per call: 1 uses SubmitReferral, more use SubmitReferrals
  // (up to 500) with that many referrals in each call, so `concurrency` x
  // `batch` referrals are in flight. Each referral's latency is its call's.
  int batch = 1;
  // Prefix of every idempotency key (the index is appended); make it unique
  // per run, or a rerun gets the first run's referrals back as duplicates.
  std::string key_prefix = "loadgen-";
  absl::Duration rpc_timeout = absl::Seconds(30);

  bool drain = true;
  // Queue to drain; empty: every queue the submissions were routed to.
  std::string queue;
  int claim_batch = 50;   // ClaimReferrals max (1..100)
  int drain_workers = 4;  // concurrent claim loops
  int lease_seconds = 0;  // 0: the broker's default
  std::string worker_prefix = "loadgen";
  referral::v1::Decision decision = referral::v1::DECISION_NO_FURTHER_ACTION;
  // Decide whatever the drain claims, not only this run's referrals, until
  // at least as many as it submitted are decided (the workers' last claims
  // may take it past): for timing claims at the head of
  // a deep queue on a broker kept for load testing (deploy/bench_scale.sh).
  bool decide_any = false;
  // Give up draining after this long (then the run fails).
  absl::Duration drain_timeout = absl::Minutes(10);
};

struct LoadReport {
  LatencySummary submit;
  LatencySummary claim;
  LatencySummary decide;
  LatencySummary release;  // foreign or undecidable claims given back
  int64_t duplicates = 0;  // submissions answered as duplicates
  int64_t claimed = 0;     // referrals leased by the drain
  int64_t foreign = 0;     // claimed referrals not submitted by this run
  std::map<std::string, int64_t> submitted_per_queue;
  std::map<std::string, int64_t> decided_per_queue;
  bool drain_complete = false;  // meaningful only when draining
  std::string drain_note;       // why the drain stopped early, if it did
  // From MeasureEndToEnd when asked for (referral_loadgen --e2e_probes).
  bool has_e2e = false;
  LatencySummary e2e;

  int64_t failed_rpcs() const {
    return submit.failed + claim.failed + decide.failed + release.failed;
  }
};

// Whether the run met its goal: no failed RPC and, when draining, every
// submitted referral decided.
bool LoadSucceeded(const LoadOptions& options, const LoadReport& report);

// A readable block, one line per operation; ends with a newline.
std::string FormatLoadReport(const LoadOptions& options,
                             const LoadReport& report);
// The same as a single JSON line (no trailing newline).
std::string LoadReportJson(const LoadOptions& options,
                           const LoadReport& report);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_LOAD_REPORT_H_
