// The triage console's side of the broker: every call a signed-in staff
// member makes goes through here, over the public gRPC API as the gateway's
// own triage principal, with `x-referral-on-behalf-of: <staff name>` so the
// broker's audit trail records "<principal> for <staff>". It also
//  - keeps the claims made through the console (lease token, the claimed
//    referral with its linked history) in memory, for the staff member who
//    holds each one: the lease token never reaches the browser;
//  - holds one WatchQueue stream per queue and fans its events out to the
//    browsers' server-sent-event streams (bounded);
//  - samples GetQueueStats for the overview's depth-over-time chart.
// Answers are JSON documents for the browser (nlohmann::json); errors are
// absl::Status with messages that carry no personal data.
#ifndef REFERRAL_CLIENTS_CONSOLE_GATEWAY_H_
#define REFERRAL_CLIENTS_CONSOLE_GATEWAY_H_

#include <grpcpp/channel.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker_client.h"
#include "nlohmann/json.hpp"

namespace referral::clients {

struct GatewayOptions {
  // The queues the console shows, in this order. The broker's routing file
  // names them; the triage principal must be allowed to use each.
  std::vector<std::string> queues = {"ifd-urgent", "ifd-triage", "out-of-area",
                                     "edt-out-of-hours"};
  // Lease asked for by a claim from the console (0: the broker's default).
  int lease_seconds = 1800;
  // Deadline of each unary call to the broker.
  absl::Duration call_timeout = absl::Seconds(10);
  // Depth samples for the overview chart.
  absl::Duration stats_interval = absl::Seconds(60);
  absl::Duration stats_retention = absl::Hours(24);
  // Browsers' live streams, all queues together; more are refused.
  size_t max_event_streams = 32;
  // Events waiting for one slow browser stream before the oldest are
  // dropped (the browser re-reads the list on any event, so a dropped one
  // loses nothing).
  size_t max_event_backlog = 64;
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

// One browser's live stream of a queue's events.
class EventStream {
 public:
  // The next event as one JSON line, waiting up to `timeout`: "" when none
  // came in time (the caller sends a keep-alive), nullopt once the stream
  // is closed (gateway shutting down).
  std::optional<std::string> Next(absl::Duration timeout);
  void Close();
  void Push(std::string event);

  explicit EventStream(size_t max_backlog) : max_backlog_(max_backlog) {}

 private:
  const size_t max_backlog_;
  absl::Mutex mu_;
  std::deque<std::string> pending_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

class ConsoleGateway {
 public:
  static constexpr char kAllQueues[] = "*";

  ConsoleGateway(std::shared_ptr<grpc::Channel> channel,
                 GatewayOptions options);
  ~ConsoleGateway();
  ConsoleGateway(const ConsoleGateway&) = delete;
  ConsoleGateway& operator=(const ConsoleGateway&) = delete;

  // Starts the watch streams and the stats sampler.
  void Start();
  // Closes every browser stream, cancels the watch streams and joins the
  // threads. Idempotent.
  void Stop();

  bool KnowsQueue(const std::string& queue) const;
  const std::vector<std::string>& queues() const { return options_.queues; }

  // Each queue's waiting referrals in delivery order (initials and ages
  // only), with the console's claims and what the watch streams saw
  // claimed by other tools.
  absl::StatusOr<nlohmann::json> ListQueues(const std::string& user);
  // Claims the referral at the head of `queue` for `user`.
  absl::StatusOr<nlohmann::json> ClaimNext(const std::string& user,
                                           const std::string& queue);
  // The referral as `user` may see it: in full with its linked history
  // when `user` holds the claim; its holder when someone else does; its
  // queue summary and place while it waits.
  absl::StatusOr<nlohmann::json> GetReferral(const std::string& user,
                                             const std::string& referral_id);
  absl::StatusOr<nlohmann::json> Extend(const std::string& user,
                                        const std::string& referral_id,
                                        int lease_seconds);
  absl::StatusOr<nlohmann::json> Release(const std::string& user,
                                         const std::string& referral_id,
                                         const std::string& reason);
  absl::StatusOr<nlohmann::json> Decide(const std::string& user,
                                        const std::string& referral_id,
                                        const std::string& decision,
                                        const std::string& rationale,
                                        const std::string& feedback);
  // Per-queue counts now and the sampled depth history.
  absl::StatusOr<nlohmann::json> Overview(const std::string& user);

  // A live stream of `queue`'s events, or of every queue's for
  // kAllQueues (what the page uses: browsers allow only six connections
  // per site over HTTP/1.1, so one stream per queue would starve the page's
  // own requests). RESOURCE_EXHAUSTED beyond max_event_streams.
  // Unsubscribe when the browser goes away.
  absl::StatusOr<std::shared_ptr<EventStream>> Subscribe(
      const std::string& queue);
  void Unsubscribe(const std::string& queue,
                   const std::shared_ptr<EventStream>& stream);

 private:
  // A claim made through the console.
  struct ConsoleClaim {
    std::string user;
    std::string queue;
    std::string lease_token;
    absl::Time claimed_at;
    absl::Time lease_expires_at;
    v1::ClaimedReferral claimed;
    nlohmann::json timeline = nlohmann::json::array();
  };
  // A claim seen on a watch stream, made by another tool (or another
  // gateway): the worker's name and when, nothing else is known.
  struct OtherClaim {
    std::string worker;
    std::string queue;
    absl::Time at;
  };
  // What the console remembers after its own decision (no personal data).
  struct Finished {
    std::string user;
    std::string outcome;  // "decided <decision>" or "released"
    absl::Time at;
  };
  struct DepthSample {
    absl::Time at;
    int64_t ready = 0;
    int64_t claimed = 0;
  };

  // A unary call made for `user` (none: the gateway's own).
  CallOptions CallFor(const std::string& user) const;
  // The head of `queue`, up to `page_size` entries, as `user` lists it.
  absl::StatusOr<v1::ListQueueResponse> FirstPage(const std::string& user,
                                                  const std::string& queue,
                                                  int page_size) const;
  void WatchLoop(std::string queue);
  void SampleLoop();
  void OnQueueEvent(const v1::QueueEvent& event);
  // The console's live claim of `referral_id`, if any and unexpired.
  std::optional<ConsoleClaim> FindClaim(const std::string& referral_id);
  absl::StatusOr<ConsoleClaim> ClaimHeldBy(const std::string& user,
                                           const std::string& referral_id);
  // After a release or decision that answered `status`; `finished`, what
  // the console remembers of a successful one.
  void ForgetClaim(const std::string& referral_id, const absl::Status& status,
                   std::optional<Finished> finished);
  // A request under `user`'s claim of `referral_id`: its referral id and
  // lease token set (the token never leaves the gateway).
  template <typename Request>
  absl::StatusOr<Request> LeasedRequest(const std::string& user,
                                        const std::string& referral_id);

  const GatewayOptions options_;
  const BrokerClient client_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, ConsoleClaim> claims_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, OtherClaim> other_claims_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Finished> finished_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<DepthSample>> samples_ ABSL_GUARDED_BY(mu_);
  std::string stats_error_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::shared_ptr<EventStream>>> streams_
      ABSL_GUARDED_BY(mu_);
  size_t stream_count_ ABSL_GUARDED_BY(mu_) = 0;
  // One per queue's watch stream, for Stop to end it. Filled by the
  // constructor, read-only after (CallCanceller is thread-safe).
  std::map<std::string, std::unique_ptr<CallCanceller>> watch_cancellers_;
  std::vector<std::thread> threads_;
};

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_CONSOLE_GATEWAY_H_
