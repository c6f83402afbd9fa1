// The broker's Prometheus metrics: what ops staff watch to hear about a
// growing backlog or overdue referrals before a child waits.
//
// Three sources: counters fed from the store's committed queue events (so a
// count moves only once its change is durable), per-RPC latency and status
// from a gRPC interceptor, and gauges read from the store at scrape time
// (queue depth, overdue, feedback backlog, disk). Labels are queue names,
// agency ids and types, decisions, method names and status codes: bounded
// sets, never personal data.
#ifndef REFERRAL_SERVER_BROKER_METRICS_H_
#define REFERRAL_SERVER_BROKER_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "referral/v1/broker.pb.h"
#include "storage/referral_store.h"

namespace referral::server {

// What the scrape-time gauges read.
struct MetricsSources {
  storage::ReferralStore* store = nullptr;
  std::function<absl::Time()> clock;
  // Outcomes unacknowledged for longer than this count as overdue.
  absl::Duration outcome_ack_overdue;
  // Whether health reports SERVING.
  std::function<bool()> serving;
};

class BrokerMetrics {
 public:
  BrokerMetrics();
  ~BrokerMetrics();
  BrokerMetrics(const BrokerMetrics&) = delete;
  BrokerMetrics& operator=(const BrokerMetrics&) = delete;

  // Counts lease expiries, redeliveries, dead letters, intake by agency type
  // and decisions. Called on the store's commit thread: cheap.
  void CountCommitted(const std::vector<v1::QueueEvent>& events);

  // Records where a group commit's time went and how many mutations shared
  // its synced write. Called on the store's commit thread: cheap.
  void ObserveGroupCommit(const storage::GroupCommitTiming& timing);

  // Times every unary call and counts its status code, by service and method.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  NewInterceptorFactory();

  // Serves GET /metrics on `listen_address` (port 0: any free port) with the
  // gauges read from `sources`, which must outlive this object.
  absl::Status Serve(const std::string& listen_address, MetricsSources sources);
  // Stops the endpoint (waiting for a scrape in progress); the store may be
  // closed after this returns. Counting goes on.
  void StopServing();
  // The bound port; 0 before Serve.
  int port() const;

  // The exposition text of everything registered, as a scrape would see it
  // (for tests of this unit).
  std::string Render() const;

 private:
  struct Families;
  std::unique_ptr<Families> families_;
};

}  // namespace referral::server

#endif  // REFERRAL_SERVER_BROKER_METRICS_H_
