#include "peer_bench.h"

#include <algorithm>

#include "absl/flags/flag.h"

ABSL_FLAG(int64_t, n, 10000, "messages to send (and drain)");
ABSL_FLAG(int, concurrency, 64, "messages sent and not yet confirmed, in all");
ABSL_FLAG(int, clients, 16, "sending connections (at most --concurrency)");
ABSL_FLAG(bool, drain, true, "read and acknowledge everything sent");
ABSL_FLAG(int, drain_workers, 4, "consumers");
ABSL_FLAG(int, drain_batch, 50,
          "messages a consumer takes at a time (prefetch, XREADGROUP COUNT)");
ABSL_FLAG(int64_t, e2e, 0, "end-to-end probes, one at a time (0: none)");

namespace referral::clients {

PeerBenchPlan PeerBenchPlanFromFlags() {
  PeerBenchPlan plan;
  plan.n = absl::GetFlag(FLAGS_n);
  plan.concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  plan.clients = std::clamp(absl::GetFlag(FLAGS_clients), 1, plan.concurrency);
  plan.drain = absl::GetFlag(FLAGS_drain);
  plan.drain_workers = std::max(1, absl::GetFlag(FLAGS_drain_workers));
  plan.drain_batch = absl::GetFlag(FLAGS_drain_batch);
  plan.e2e = absl::GetFlag(FLAGS_e2e);
  return plan;
}

}  // namespace referral::clients
