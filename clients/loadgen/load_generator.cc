#include "load_generator.h"

#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <unordered_set>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "broker_channel.h"
#include "broker_client.h"
#include "decision_names.h"

namespace referral::clients {
namespace {

namespace v1 = ::referral::v1;

constexpr absl::string_view kForeignReason =
    "referral_loadgen: not submitted by this run; returned untouched";
constexpr absl::string_view kUndecidedReason =
    "referral_loadgen: decision failed; returned for another attempt";
constexpr absl::string_view kRationale =
    "Synthetic load-test referral (referral_loadgen): no action.";
// A drain worker gives up after this many failed claims in a row (the
// broker is down or the queue name is wrong: waiting will not help).
constexpr int kMaxConsecutiveClaimFailures = 20;

// One unary call through the callback API, its context prepared as the
// typed client prepares its own. It owns its context, request and response,
// reports to `done` and deletes itself: OnDone is the last thing gRPC does
// with a reactor, so that is safe.
template <typename Request, typename Response>
class UnaryCall : public grpc::ClientUnaryReactor {
 public:
  using Done = std::function<void(const absl::Status&, const Response&,
                                  absl::Duration latency)>;

  UnaryCall(const CallOptions& call, Done done) : done_(std::move(done)) {
    BrokerClient::PrepareContext(call, &context_);
  }

  grpc::ClientContext* context() { return &context_; }
  Request* request() { return &request_; }
  Response* response() { return &response_; }

  // Call after handing the reactor to the stub's async() method.
  void Begin() {
    start_ = absl::Now();
    StartCall();
  }

  void OnDone(const grpc::Status& status) override {
    done_(FromGrpcStatus(status), response_, absl::Now() - start_);
    delete this;
  }

 private:
  // Declared first so it is destroyed last: `done` may hold the last
  // reference to the run's state, which the waiting thread watches.
  Done done_;
  grpc::ClientContext context_;
  Request request_;
  Response response_;
  absl::Time start_;
};

// Everything the calls in flight share. Held by shared_ptr from every
// callback, so it outlives the last of them whatever order they end in.
struct RunState {
  LoadOptions options;
  CallOptions call;  // every call's deadline
  ReferralSource source;
  std::vector<std::unique_ptr<BrokerClient>> clients;  // one per channel
  OperationStats submit_stats;
  OperationStats claim_stats;
  OperationStats decide_stats;
  OperationStats release_stats;
  std::atomic<int64_t> next_index{0};

  absl::Mutex mu;
  int64_t submits_done ABSL_GUARDED_BY(mu) = 0;
  // Referrals this run submitted and has not yet decided.
  std::unordered_set<std::string> undecided ABSL_GUARDED_BY(mu);
  std::map<std::string, int64_t> submitted_per_queue ABSL_GUARDED_BY(mu);
  std::map<std::string, int64_t> decided_per_queue ABSL_GUARDED_BY(mu);
  int64_t duplicates ABSL_GUARDED_BY(mu) = 0;
  int64_t claimed ABSL_GUARDED_BY(mu) = 0;
  int64_t foreign ABSL_GUARDED_BY(mu) = 0;
  // Other people's referrals claimed by the drain: held (not released)
  // until it ends, so that each costs its owner one delivery attempt, not
  // one per claim until it is dead-lettered.
  std::vector<std::pair<std::string, std::string>> held_foreign
      ABSL_GUARDED_BY(mu);  // referral id, lease token
  bool stop ABSL_GUARDED_BY(mu) = false;
  std::string drain_note ABSL_GUARDED_BY(mu);
};

// --- submit ------------------------------------------------------------------

void IssueSubmit(const std::shared_ptr<RunState>& state);

// Counts one answered submission (of either call).
void RecordSubmission(const std::shared_ptr<RunState>& state,
                      const absl::Status& status,
                      const v1::SubmitReferralResponse& response,
                      absl::Duration latency) {
  state->submit_stats.Record(status, latency);
  absl::MutexLock lock(&state->mu);
  if (status.ok() && response.duplicate()) {
    // Stored by an earlier run, perhaps decided already: not ours to
    // drain.
    ++state->duplicates;
  } else if (status.ok()) {
    state->undecided.insert(response.referral_id());
    ++state->submitted_per_queue[response.queue()];
  }
  ++state->submits_done;
}

void IssueSubmit(const std::shared_ptr<RunState>& state) {
  const int64_t index = state->next_index.fetch_add(1);
  if (index >= state->options.n) return;
  using Call = UnaryCall<v1::SubmitReferralRequest, v1::SubmitReferralResponse>;
  auto* call =
      new Call(state->call, [state](const absl::Status& status,
                                    const v1::SubmitReferralResponse& response,
                                    absl::Duration latency) {
        RecordSubmission(state, status, response, latency);
        // Keep `concurrency` calls in flight: each
        // completion starts the next.
        IssueSubmit(state);
      });
  *call->request()->mutable_referral() = state->source(index);
  call->request()->set_idempotency_key(
      absl::StrCat(state->options.key_prefix, index));
  const BrokerClient& client =
      *state->clients[static_cast<size_t>(index) % state->clients.size()];
  client.intake().async()->SubmitReferral(call->context(), call->request(),
                                          call->response(), call);
  call->Begin();
}

void IssueSubmitBatch(const std::shared_ptr<RunState>& state) {
  const int64_t first = state->next_index.fetch_add(state->options.batch);
  const int64_t end = std::min(first + state->options.batch, state->options.n);
  if (first >= end) return;
  using Call =
      UnaryCall<v1::SubmitReferralsRequest, v1::SubmitReferralsResponse>;
  auto* call = new Call(
      state->call,
      [state, count = end - first](const absl::Status& status,
                                   const v1::SubmitReferralsResponse& response,
                                   absl::Duration latency) {
        for (int64_t i = 0; i < count; ++i) {
          // A failed call fails each of its referrals; an answer without a
          // result for one is that referral's failure.
          if (!status.ok() || i >= response.results_size()) {
            RecordSubmission(
                state,
                status.ok() ? absl::InternalError("no result for this referral")
                            : status,
                v1::SubmitReferralResponse(), latency);
            continue;
          }
          const v1::SubmitReferralResult& result =
              response.results(static_cast<int>(i));
          RecordSubmission(
              state,
              absl::Status(static_cast<absl::StatusCode>(result.code()),
                           result.message()),
              result.accepted(), latency);
        }
        IssueSubmitBatch(state);
      });
  for (int64_t index = first; index < end; ++index) {
    v1::SubmitReferralRequest* submission = call->request()->add_referrals();
    *submission->mutable_referral() = state->source(index);
    submission->set_idempotency_key(
        absl::StrCat(state->options.key_prefix, index));
  }
  const BrokerClient& client =
      *state->clients[static_cast<size_t>(first / state->options.batch) %
                      state->clients.size()];
  client.intake().async()->SubmitReferrals(call->context(), call->request(),
                                           call->response(), call);
  call->Begin();
}

// --- drain -------------------------------------------------------------------

// Counts the decide and release calls of one claimed batch down to zero.
struct Batch {
  absl::Mutex mu;
  int pending ABSL_GUARDED_BY(mu) = 0;

  void Done() {
    absl::MutexLock lock(&mu);
    --pending;
  }
  void Wait() {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* p) { return *p == 0; }, &pending));
  }
};

// `foreign`: a FAILED_PRECONDITION answer means the lease had already
// lapsed, so the referral is back in its queue as wanted: not a failure.
void IssueRelease(const std::shared_ptr<RunState>& state,
                  const BrokerClient& client, const std::string& referral_id,
                  const std::string& token, absl::string_view reason,
                  bool foreign, const std::shared_ptr<Batch>& batch) {
  using Call =
      UnaryCall<v1::ReleaseReferralRequest, v1::ReleaseReferralResponse>;
  auto* call = new Call(state->call, [state, batch, foreign](
                                         const absl::Status& status,
                                         const v1::ReleaseReferralResponse&,
                                         absl::Duration latency) {
    const bool lapsed = foreign && absl::IsFailedPrecondition(status);
    state->release_stats.Record(lapsed ? absl::OkStatus() : status, latency);
    batch->Done();
  });
  call->request()->set_referral_id(referral_id);
  call->request()->set_lease_token(token);
  call->request()->set_reason(std::string(reason));
  client.triage().async()->ReleaseReferral(call->context(), call->request(),
                                           call->response(), call);
  call->Begin();
}

void IssueDecide(const std::shared_ptr<RunState>& state,
                 const BrokerClient& client, const std::string& queue,
                 const std::string& referral_id, const std::string& token,
                 const std::shared_ptr<Batch>& batch) {
  using Call = UnaryCall<v1::RecordDecisionRequest, v1::RecordDecisionResponse>;
  auto* call = new Call(state->call, [state, &client, queue, referral_id, token,
                                      batch](const absl::Status& status,
                                             const v1::RecordDecisionResponse&,
                                             absl::Duration latency) {
    state->decide_stats.Record(status, latency);
    if (status.ok()) {
      absl::MutexLock lock(&state->mu);
      if (state->undecided.erase(referral_id) > 0 ||
          state->options.decide_any) {
        ++state->decided_per_queue[queue];
      }
      batch->Done();
      return;
    }
    // Give it back rather than leave it leased until the lease
    // runs out, which would stall the drain. The release completes
    // the batch entry instead.
    IssueRelease(state, client, referral_id, token, kUndecidedReason,
                 /*foreign=*/false, batch);
  });
  call->request()->set_referral_id(referral_id);
  call->request()->set_lease_token(token);
  call->request()->set_decision(state->options.decision);
  call->request()->set_rationale(std::string(kRationale));
  client.triage().async()->RecordDecision(call->context(), call->request(),
                                          call->response(), call);
  call->Begin();
}

void DrainWorker(const std::shared_ptr<RunState>& state, int worker,
                 const std::map<std::string, int64_t>& targets,
                 absl::Time deadline) {
  const BrokerClient& client =
      *state->clients[static_cast<size_t>(worker) % state->clients.size()];
  const std::string worker_name =
      absl::StrCat(state->options.worker_prefix, "-", worker);
  std::vector<std::string> queues;
  for (const auto& [queue, target] : targets) queues.push_back(queue);
  size_t next_queue = static_cast<size_t>(worker);
  absl::Duration backoff = absl::Milliseconds(5);
  int consecutive_failures = 0;

  while (true) {
    std::string queue;
    {
      absl::MutexLock lock(&state->mu);
      if (state->stop) return;
      // Round-robin over the queues that still hold undecided referrals.
      for (size_t i = 0; i < queues.size(); ++i) {
        const std::string& q = queues[(next_queue + i) % queues.size()];
        if (state->decided_per_queue[q] < targets.at(q)) {
          queue = q;
          next_queue = (next_queue + i) % queues.size();
          break;
        }
      }
      if (queue.empty()) return;  // all decided
      if (absl::Now() > deadline) {
        state->stop = true;
        state->drain_note =
            absl::StrCat("drain timed out after ",
                         absl::FormatDuration(state->options.drain_timeout));
        return;
      }
    }

    v1::ClaimReferralsRequest request;
    request.set_queue(queue);
    request.set_max(state->options.claim_batch);
    request.set_lease_seconds(state->options.lease_seconds);
    request.set_worker(worker_name);
    const absl::Time start = absl::Now();
    const absl::StatusOr<v1::ClaimReferralsResponse> claimed =
        client.ClaimReferrals(request, state->call);
    state->claim_stats.Record(claimed.status(), absl::Now() - start);
    if (!claimed.ok()) {
      if (++consecutive_failures >= kMaxConsecutiveClaimFailures) {
        absl::MutexLock lock(&state->mu);
        state->stop = true;
        state->drain_note = absl::StrCat(
            kMaxConsecutiveClaimFailures, " claims in a row failed (last: ",
            StatusCodeName(claimed.status().code()), ")");
        return;
      }
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Milliseconds(500));
      continue;
    }
    consecutive_failures = 0;
    const v1::ClaimReferralsResponse& response = *claimed;
    if (response.claims().empty()) {
      // Still routing, or the rest is leased by another worker: wait a
      // little, then look again (possibly at another queue).
      ++next_queue;
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Milliseconds(200));
      continue;
    }
    backoff = absl::Milliseconds(5);

    std::vector<const v1::ClaimedReferral*> ours;
    {
      absl::MutexLock lock(&state->mu);
      for (const v1::ClaimedReferral& claim : response.claims()) {
        ++state->claimed;
        if (state->options.decide_any ||
            state->undecided.count(claim.referral_id()) > 0) {
          ours.push_back(&claim);
        } else {
          ++state->foreign;
          state->held_foreign.emplace_back(claim.referral_id(),
                                           claim.lease_token());
        }
      }
    }
    auto batch = std::make_shared<Batch>();
    {
      absl::MutexLock lock(&batch->mu);
      batch->pending = static_cast<int>(ours.size());
    }
    for (const v1::ClaimedReferral* claim : ours) {
      IssueDecide(state, client, queue, claim->referral_id(),
                  claim->lease_token(), batch);
    }
    batch->Wait();
  }
}

// Gives back every foreign referral the drain held, once.
void ReleaseHeldForeign(const std::shared_ptr<RunState>& state) {
  // A lease that lapsed during a long drain may have been claimed again:
  // only the latest token is current.
  std::map<std::string, std::string> latest;
  {
    absl::MutexLock lock(&state->mu);
    for (auto& [id, token] : state->held_foreign) latest[id] = token;
    state->held_foreign.clear();
  }
  if (latest.empty()) return;
  auto batch = std::make_shared<Batch>();
  {
    absl::MutexLock lock(&batch->mu);
    batch->pending = static_cast<int>(latest.size());
  }
  size_t i = 0;
  for (const auto& [id, token] : latest) {
    IssueRelease(state, *state->clients[i++ % state->clients.size()], id, token,
                 kForeignReason, /*foreign=*/true, batch);
  }
  batch->Wait();
}

}  // namespace

LoadReport RunLoad(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                   const LoadOptions& options, const ReferralSource& source) {
  auto state = std::make_shared<RunState>();
  state->options = options;
  state->options.concurrency = std::max(1, options.concurrency);
  state->options.drain_workers = std::max(1, options.drain_workers);
  state->options.batch = std::clamp(options.batch, 1, 500);
  state->call.timeout = options.rpc_timeout;
  state->source = source;
  for (const auto& channel : channels) {
    state->clients.push_back(std::make_unique<BrokerClient>(channel));
  }
  LoadReport report;
  if (channels.empty()) {
    report.drain_note = "no channel to the broker";
    return report;
  }

  // Submit: `concurrency` calls in flight until n have completed.
  const absl::Time submit_start = absl::Now();
  const int64_t n = std::max<int64_t>(0, options.n);
  state->options.n = n;
  const int batch = state->options.batch;
  for (int i = 0; i < state->options.concurrency && int64_t{i} * batch < n;
       ++i) {
    if (batch > 1) {
      IssueSubmitBatch(state);
    } else {
      IssueSubmit(state);
    }
  }
  {
    absl::MutexLock lock(&state->mu);
    state->mu.Await(absl::Condition(
        +[](RunState* s) { return s->submits_done >= s->options.n; },
        state.get()));
  }
  report.submit = state->submit_stats.Summarize(absl::Now() - submit_start);

  std::map<std::string, int64_t> targets;
  {
    absl::MutexLock lock(&state->mu);
    report.submitted_per_queue = state->submitted_per_queue;
    report.duplicates = state->duplicates;
  }
  if (options.queue.empty()) {
    targets = report.submitted_per_queue;
  } else {
    auto it = report.submitted_per_queue.find(options.queue);
    targets[options.queue] =
        it == report.submitted_per_queue.end() ? 0 : it->second;
  }
  int64_t target_total = 0;
  for (const auto& [queue, count] : targets) target_total += count;

  if (options.drain) {
    const absl::Time drain_start = absl::Now();
    const absl::Time deadline = drain_start + options.drain_timeout;
    std::vector<std::thread> workers;
    if (target_total > 0) {
      for (int w = 0; w < state->options.drain_workers; ++w) {
        workers.emplace_back(
            [&, w] { DrainWorker(state, w, targets, deadline); });
      }
    }
    for (std::thread& t : workers) t.join();
    ReleaseHeldForeign(state);
    const absl::Duration wall = absl::Now() - drain_start;
    report.claim = state->claim_stats.Summarize(wall);
    report.decide = state->decide_stats.Summarize(wall);
    report.release = state->release_stats.Summarize(wall);
    absl::MutexLock lock(&state->mu);
    report.decided_per_queue = state->decided_per_queue;
    report.claimed = state->claimed;
    report.foreign = state->foreign;
    int64_t decided = 0;
    for (const auto& [queue, count] : targets) {
      decided += std::min(count, state->decided_per_queue[queue]);
    }
    report.drain_complete = decided >= target_total;
    report.drain_note = state->drain_note;
    if (!options.queue.empty() && target_total == 0 && report.submit.ok > 0) {
      report.drain_complete = false;
      report.drain_note =
          absl::StrCat("no submission was routed to queue ", options.queue);
    }
  }
  // Let the last callbacks finish unwinding before the caller tears down
  // gRPC (every call in flight holds a reference to the state).
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (state.use_count() > 1 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  return report;
}

LatencySummary MeasureEndToEnd(const std::shared_ptr<grpc::Channel>& channel,
                               const LoadOptions& options,
                               const ReferralSource& source, int64_t probes) {
  const BrokerClient client(channel);
  CallOptions call;
  call.timeout = options.rpc_timeout;
  OperationStats stats;
  const std::string worker = absl::StrCat(options.worker_prefix, "-e2e");
  const absl::Time start = absl::Now();
  for (int64_t i = 0; i < probes; ++i) {
    v1::SubmitReferralRequest submit;
    *submit.mutable_referral() = source(options.n + i);
    submit.set_idempotency_key(absl::StrCat(options.key_prefix, "e2e-", i));
    const absl::Time t0 = absl::Now();
    const absl::StatusOr<v1::SubmitReferralResponse> submitted =
        client.SubmitReferral(submit, call);
    if (!submitted.ok()) {
      stats.Record(submitted.status(), absl::Now() - t0);
      continue;
    }
    v1::ClaimReferralsRequest claim;
    claim.set_queue(submitted->queue());
    claim.set_max(1);
    claim.set_lease_seconds(options.lease_seconds);
    claim.set_worker(worker);
    // Claimable as soon as the submit is acknowledged; poll briefly in case
    // a broker ever makes it visible later.
    absl::StatusOr<v1::ClaimReferralsResponse> claimed;
    const absl::Time give_up = absl::Now() + options.rpc_timeout;
    do {
      claimed = client.ClaimReferrals(claim, call);
    } while (claimed.ok() && claimed->claims().empty() &&
             absl::Now() < give_up);
    const absl::Duration latency = absl::Now() - t0;
    if (!claimed.ok() || claimed->claims().empty()) {
      stats.Record(claimed.ok() ? absl::DeadlineExceededError("never claimable")
                                : claimed.status(),
                   latency);
      continue;
    }
    const v1::ClaimedReferral& got = claimed->claims(0);
    const bool ours = got.referral_id() == submitted->referral_id();
    stats.Record(
        ours ? absl::OkStatus()
             : absl::FailedPreconditionError("claimed another referral"),
        latency);
    if (ours) {
      v1::RecordDecisionRequest decide;
      decide.set_referral_id(got.referral_id());
      decide.set_lease_token(got.lease_token());
      decide.set_decision(options.decision);
      decide.set_rationale(std::string(kRationale));
      client.RecordDecision(decide, call).IgnoreError();
    } else {
      v1::ReleaseReferralRequest release;
      release.set_referral_id(got.referral_id());
      release.set_lease_token(got.lease_token());
      release.set_reason(std::string(kForeignReason));
      client.ReleaseReferral(release, call).IgnoreError();
    }
  }
  return stats.Summarize(absl::Now() - start);
}

}  // namespace referral::clients
