// What the peer systems' benchmark clients (referral_bench_rabbitmq,
// referral_bench_redis) share beyond bench_report.h: the flags of a run's
// three phases, declared once. Intake sends --n messages with
// --concurrency in flight over --clients connections; the drain (--drain)
// reads and acknowledges them with --drain_workers consumers taking
// --drain_batch at a time; --e2e probes go one at a time from send to
// receipt.
#ifndef REFERRAL_CLIENTS_PEER_BENCH_H_
#define REFERRAL_CLIENTS_PEER_BENCH_H_

#include <cstdint>

namespace referral::clients {

struct PeerBenchPlan {
  int64_t n = 0;
  int concurrency = 1;  // at least 1
  int clients = 1;      // 1..concurrency
  bool drain = true;
  int drain_workers = 1;  // at least 1
  int drain_batch = 1;
  int64_t e2e = 0;
};

// The plan the command line asks for, bounded as above.
PeerBenchPlan PeerBenchPlanFromFlags();

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_PEER_BENCH_H_
