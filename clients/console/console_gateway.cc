#include "console_gateway.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/timestamps.h"
#include "broker_channel.h"
#include "decision_names.h"

namespace referral::clients {
namespace {

using nlohmann::json;

// Protobuf's JSON mapping with the .proto field names, every field present
// (the page need not guess defaults), enums by name.
json ProtoJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(message, &text, options)
           .ok()) {
    return json::object();
  }
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? json::object() : parsed;
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
}

json TimelineEntry(absl::Time at, const std::string& what,
                   const std::string& by) {
  return json{{"at", Rfc3339(at)}, {"what", what}, {"by", by}};
}

}  // namespace

// --- EventStream -------------------------------------------------------------

std::optional<std::string> EventStream::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closed_ || !pending_.empty();
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (closed_) return std::nullopt;
  if (pending_.empty()) return std::string();
  std::string event = std::move(pending_.front());
  pending_.pop_front();
  return event;
}

void EventStream::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

void EventStream::Push(std::string event) {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  if (pending_.size() >= max_backlog_) pending_.pop_front();
  pending_.push_back(std::move(event));
}

// --- ConsoleGateway ----------------------------------------------------------

ConsoleGateway::ConsoleGateway(std::shared_ptr<grpc::Channel> channel,
                               GatewayOptions options)
    : options_(std::move(options)), client_(channel) {
  for (const std::string& queue : options_.queues) {
    watch_cancellers_[queue] = std::make_unique<CallCanceller>();
  }
}

ConsoleGateway::~ConsoleGateway() { Stop(); }

void ConsoleGateway::Start() {
  for (const std::string& queue : options_.queues) {
    threads_.emplace_back([this, queue] { WatchLoop(queue); });
  }
  threads_.emplace_back([this] { SampleLoop(); });
}

void ConsoleGateway::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [queue, streams] : streams_) {
      for (auto& stream : streams) stream->Close();
    }
  }
  for (auto& [queue, canceller] : watch_cancellers_) canceller->Cancel();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

bool ConsoleGateway::KnowsQueue(const std::string& queue) const {
  return std::find(options_.queues.begin(), options_.queues.end(), queue) !=
         options_.queues.end();
}

CallOptions ConsoleGateway::CallFor(const std::string& user) const {
  CallOptions call;
  call.timeout = options_.call_timeout;
  // The broker records "<gateway principal> for <user>" in its audit trail
  // and in the referral's history.
  call.on_behalf_of = user;
  return call;
}

std::optional<ConsoleGateway::ConsoleClaim> ConsoleGateway::FindClaim(
    const std::string& referral_id) {
  const absl::Time now = options_.clock();
  absl::MutexLock lock(&mu_);
  auto found = claims_.find(referral_id);
  if (found == claims_.end()) return std::nullopt;
  // A lease that ran out is the broker's to return to the queue; the
  // console stops offering the claim at once rather than at the event.
  if (found->second.lease_expires_at <= now) {
    claims_.erase(found);
    return std::nullopt;
  }
  return found->second;
}

absl::StatusOr<ConsoleGateway::ConsoleClaim> ConsoleGateway::ClaimHeldBy(
    const std::string& user, const std::string& referral_id) {
  std::optional<ConsoleClaim> claim = FindClaim(referral_id);
  if (!claim.has_value()) {
    return absl::FailedPreconditionError(
        "referral: you do not hold a claim on it (claim it first)");
  }
  if (claim->user != user) {
    return absl::PermissionDeniedError(
        absl::StrCat("referral: claimed by ", claim->user));
  }
  return *std::move(claim);
}

void ConsoleGateway::ForgetClaim(const std::string& referral_id,
                                 const absl::Status& status,
                                 std::optional<Finished> finished) {
  // Done, or the lease was already gone: either way the console no longer
  // holds the claim (and forgets its content).
  if (!status.ok() && !absl::IsFailedPrecondition(status)) return;
  absl::MutexLock lock(&mu_);
  claims_.erase(referral_id);
  if (status.ok() && finished.has_value()) {
    finished_[referral_id] = *std::move(finished);
  }
}

template <typename Request>
absl::StatusOr<Request> ConsoleGateway::LeasedRequest(
    const std::string& user, const std::string& referral_id) {
  absl::StatusOr<ConsoleClaim> claim = ClaimHeldBy(user, referral_id);
  if (!claim.ok()) return claim.status();
  Request request;
  request.set_referral_id(referral_id);
  request.set_lease_token(claim->lease_token);
  return request;
}

absl::StatusOr<v1::ListQueueResponse> ConsoleGateway::FirstPage(
    const std::string& user, const std::string& queue, int page_size) const {
  v1::ListQueueRequest request;
  request.set_queue(queue);
  request.mutable_page()->set_page_size(page_size);
  return client_.ListQueue(request, CallFor(user));
}

absl::StatusOr<json> ConsoleGateway::ListQueues(const std::string& user) {
  json queues = json::array();
  for (const std::string& queue : options_.queues) {
    absl::StatusOr<v1::ListQueueResponse> response =
        FirstPage(user, queue, 200);
    if (!response.ok()) return response.status();
    json entries = json::array();
    for (const v1::QueueEntry& entry : response->entries()) {
      entries.push_back(ProtoJson(entry));
    }
    queues.push_back(json{{"queue", queue},
                          {"ready_count", response->ready_count()},
                          {"more", !response->next_page_token().empty()},
                          {"entries", std::move(entries)},
                          {"claimed", json::array()}});
  }
  const absl::Time now = options_.clock();
  absl::MutexLock lock(&mu_);
  for (json& queue : queues) {
    const std::string name = queue["queue"];
    for (const auto& [id, claim] : claims_) {
      if (claim.queue != name || claim.lease_expires_at <= now) continue;
      queue["claimed"].push_back(
          json{{"referral_id", id},
               {"holder", claim.user},
               {"lease_expires_at", Rfc3339(claim.lease_expires_at)},
               {"entry", ProtoJson(claim.claimed.entry())}});
    }
    for (const auto& [id, claim] : other_claims_) {
      if (claim.queue != name) continue;
      queue["claimed"].push_back(json{{"referral_id", id},
                                      {"holder", claim.worker},
                                      {"since", Rfc3339(claim.at)},
                                      {"outside_console", true}});
    }
  }
  return json{{"now", Rfc3339(now)}, {"queues", std::move(queues)}};
}

absl::StatusOr<json> ConsoleGateway::ClaimNext(const std::string& user,
                                               const std::string& queue) {
  v1::ClaimReferralsRequest request;
  request.set_queue(queue);
  request.set_max(1);
  request.set_lease_seconds(options_.lease_seconds);
  request.set_worker(user);
  absl::StatusOr<v1::ClaimReferralsResponse> response =
      client_.ClaimReferrals(request, CallFor(user));
  if (!response.ok()) return response.status();
  if (response->claims().empty()) {
    return absl::NotFoundError("queue: nothing is waiting");
  }
  const v1::ClaimedReferral& claimed = response->claims(0);
  ConsoleClaim claim;
  claim.user = user;
  claim.queue = queue;
  claim.lease_token = claimed.lease_token();
  claim.claimed_at = options_.clock();
  claim.lease_expires_at = FromTimestamp(claimed.lease_expires_at());
  claim.claimed = claimed;
  // The lease token stays in the gateway.
  claim.claimed.clear_lease_token();
  const absl::Time received = FromTimestamp(claimed.entry().received_at());
  claim.timeline.push_back(
      TimelineEntry(received, "received",
                    ShortName(claimed.referral().referrer().agency_type())));
  claim.timeline.push_back(
      TimelineEntry(received, absl::StrCat("queued in ", queue), "broker"));
  if (claimed.delivery_attempt() > 1) {
    claim.timeline.push_back(TimelineEntry(
        claim.claimed_at,
        absl::StrCat("delivered ", claimed.delivery_attempt() - 1,
                     " time(s) before (released or lease expired)"),
        "broker"));
  }
  claim.timeline.push_back(TimelineEntry(
      claim.claimed_at,
      absl::StrCat("claimed (delivery ", claimed.delivery_attempt(), ")"),
      user));
  const std::string id = claimed.referral_id();
  {
    absl::MutexLock lock(&mu_);
    other_claims_.erase(id);
    finished_.erase(id);
    claims_[id] = std::move(claim);
  }
  return json{{"referral_id", id}};
}

absl::StatusOr<json> ConsoleGateway::GetReferral(
    const std::string& user, const std::string& referral_id) {
  if (std::optional<ConsoleClaim> claim = FindClaim(referral_id)) {
    json out{{"referral_id", referral_id},
             {"queue", claim->queue},
             {"holder", claim->user},
             {"lease_expires_at", Rfc3339(claim->lease_expires_at)}};
    if (claim->user == user) {
      out["status"] = "claimed_by_you";
      out["claim"] = ProtoJson(claim->claimed);
      out["timeline"] = claim->timeline;
    } else {
      out["status"] = "claimed_by_other";
      out["entry"] = ProtoJson(claim->claimed.entry());
    }
    return out;
  }
  {
    absl::MutexLock lock(&mu_);
    if (auto other = other_claims_.find(referral_id);
        other != other_claims_.end()) {
      return json{{"referral_id", referral_id},
                  {"status", "claimed_by_other"},
                  {"queue", other->second.queue},
                  {"holder", other->second.worker},
                  {"since", Rfc3339(other->second.at)},
                  {"outside_console", true}};
    }
    if (auto done = finished_.find(referral_id); done != finished_.end()) {
      return json{{"referral_id", referral_id},
                  {"status", "finished"},
                  {"by", done->second.user},
                  {"outcome", done->second.outcome},
                  {"at", Rfc3339(done->second.at)}};
    }
  }
  // Waiting: found in its queue's first page, with its place in line.
  for (const std::string& queue : options_.queues) {
    absl::StatusOr<v1::ListQueueResponse> response =
        FirstPage(user, queue, 500);
    if (!response.ok()) return response.status();
    for (int i = 0; i < response->entries_size(); ++i) {
      if (response->entries(i).referral_id() != referral_id) continue;
      return json{{"referral_id", referral_id},
                  {"status", "waiting"},
                  {"queue", queue},
                  {"position", i + 1},
                  {"ready_count", response->ready_count()},
                  {"entry", ProtoJson(response->entries(i))}};
    }
  }
  return absl::NotFoundError(
      "referral: not waiting in the console's queues and not claimed "
      "through the console");
}

absl::StatusOr<json> ConsoleGateway::Extend(const std::string& user,
                                            const std::string& referral_id,
                                            int lease_seconds) {
  absl::StatusOr<v1::ExtendClaimRequest> request =
      LeasedRequest<v1::ExtendClaimRequest>(user, referral_id);
  if (!request.ok()) return request.status();
  request->set_lease_seconds(lease_seconds);
  absl::StatusOr<v1::ExtendClaimResponse> response =
      client_.ExtendClaim(*request, CallFor(user));
  if (!response.ok()) return response.status();
  const absl::Time expires = FromTimestamp(response->lease_expires_at());
  absl::MutexLock lock(&mu_);
  if (auto found = claims_.find(referral_id); found != claims_.end()) {
    found->second.lease_expires_at = expires;
    found->second.timeline.push_back(TimelineEntry(
        options_.clock(), absl::StrCat("claim extended to ", Rfc3339(expires)),
        user));
  }
  return json{{"lease_expires_at", Rfc3339(expires)}};
}

absl::StatusOr<json> ConsoleGateway::Release(const std::string& user,
                                             const std::string& referral_id,
                                             const std::string& reason) {
  absl::StatusOr<v1::ReleaseReferralRequest> request =
      LeasedRequest<v1::ReleaseReferralRequest>(user, referral_id);
  if (!request.ok()) return request.status();
  request->set_reason(reason);
  absl::StatusOr<v1::ReleaseReferralResponse> response =
      client_.ReleaseReferral(*request, CallFor(user));
  ForgetClaim(referral_id, response.status(), std::nullopt);
  if (!response.ok()) return response.status();
  return json{{"state", ShortName(response->state())}};
}

absl::StatusOr<json> ConsoleGateway::Decide(const std::string& user,
                                            const std::string& referral_id,
                                            const std::string& decision,
                                            const std::string& rationale,
                                            const std::string& feedback) {
  absl::StatusOr<v1::Decision> parsed = ParseDecision(decision);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<v1::RecordDecisionRequest> request =
      LeasedRequest<v1::RecordDecisionRequest>(user, referral_id);
  if (!request.ok()) return request.status();
  request->set_decision(*parsed);
  request->set_rationale(rationale);
  request->set_feedback(feedback);
  absl::StatusOr<v1::RecordDecisionResponse> response =
      client_.RecordDecision(*request, CallFor(user));
  ForgetClaim(referral_id, response.status(),
              Finished{user, absl::StrCat("decided: ", ShortName(*parsed)),
                       response.ok() ? FromTimestamp(response->decided_at())
                                     : absl::Time()});
  if (!response.ok()) return response.status();
  return json{{"decided_at", Rfc3339(FromTimestamp(response->decided_at()))},
              {"state", ShortName(response->state())}};
}

absl::StatusOr<json> ConsoleGateway::Overview(const std::string& user) {
  absl::StatusOr<v1::GetQueueStatsResponse> response =
      client_.GetQueueStats(v1::GetQueueStatsRequest(), CallFor(user));
  if (!response.ok()) return response.status();
  json queues = json::array();
  for (const v1::QueueStats& stats : response->queues()) {
    json q = ProtoJson(stats);
    // Durations as whole seconds: the page does arithmetic on them.
    q["oldest_ready_age_seconds"] = stats.oldest_ready_age().seconds();
    queues.push_back(std::move(q));
  }
  json history = json::object();
  absl::MutexLock lock(&mu_);
  for (const auto& [queue, samples] : samples_) {
    json points = json::array();
    for (const DepthSample& sample : samples) {
      points.push_back(json{{"at", Rfc3339(sample.at)},
                            {"ready", sample.ready},
                            {"claimed", sample.claimed}});
    }
    history[queue] = std::move(points);
  }
  return json{{"at", Rfc3339(FromTimestamp(response->at()))},
              {"queues", std::move(queues)},
              {"history", std::move(history)},
              {"sample_interval_seconds",
               absl::ToInt64Seconds(options_.stats_interval)},
              {"retention_hours", absl::ToInt64Hours(options_.stats_retention)},
              {"sampler_error", stats_error_}};
}

absl::StatusOr<std::shared_ptr<EventStream>> ConsoleGateway::Subscribe(
    const std::string& queue) {
  if (queue != kAllQueues && !KnowsQueue(queue)) {
    return absl::NotFoundError("queue: no such queue");
  }
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("console: shutting down");
  if (stream_count_ >= options_.max_event_streams) {
    return absl::ResourceExhaustedError("console: too many live streams");
  }
  auto stream = std::make_shared<EventStream>(options_.max_event_backlog);
  streams_[queue].push_back(stream);
  ++stream_count_;
  return stream;
}

void ConsoleGateway::Unsubscribe(const std::string& queue,
                                 const std::shared_ptr<EventStream>& stream) {
  stream->Close();
  absl::MutexLock lock(&mu_);
  auto& streams = streams_[queue];
  auto found = std::find(streams.begin(), streams.end(), stream);
  if (found != streams.end()) {
    streams.erase(found);
    --stream_count_;
  }
}

void ConsoleGateway::OnQueueEvent(const v1::QueueEvent& event) {
  const std::string& id = event.referral_id();
  json line{{"kind", ShortName(event.kind())},
            {"queue", event.queue()},
            {"referral_id", id},
            {"at", Rfc3339(FromTimestamp(event.at()))}};
  const std::string text = line.dump();
  absl::MutexLock lock(&mu_);
  switch (event.kind()) {
    case v1::QueueEvent::KIND_CLAIMED: {
      auto mine = claims_.find(id);
      if (mine != claims_.end() && mine->second.user == event.worker()) break;
      if (mine != claims_.end()) claims_.erase(mine);
      if (!event.notice_only()) {
        other_claims_[id] = OtherClaim{event.worker(), event.queue(),
                                       FromTimestamp(event.at())};
      }
      break;
    }
    case v1::QueueEvent::KIND_LEASE_EXPIRED:
    case v1::QueueEvent::KIND_DEAD_LETTERED:
      claims_.erase(id);
      other_claims_.erase(id);
      break;
    case v1::QueueEvent::KIND_RELEASED:
    case v1::QueueEvent::KIND_DECIDED:
      other_claims_.erase(id);
      break;
    default:
      break;
  }
  for (const auto& stream : streams_[event.queue()]) stream->Push(text);
  for (const auto& stream : streams_[kAllQueues]) stream->Push(text);
}

void ConsoleGateway::WatchLoop(std::string queue) {
  absl::Duration backoff = absl::Seconds(1);
  bool first = true;
  CallOptions call;
  call.timeout = absl::InfiniteDuration();
  call.canceller = watch_cancellers_.at(queue).get();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      // Events may have been missed while the stream was down: every
      // browser re-reads its list.
      if (!first) {
        const std::string resync =
            json{{"kind", "resync"}, {"queue", queue}}.dump();
        for (const auto& stream : streams_[queue]) stream->Push(resync);
        for (const auto& stream : streams_[kAllQueues]) stream->Push(resync);
      }
    }
    first = false;
    v1::WatchQueueRequest request;
    request.set_queue(queue);
    bool received = false;
    // However the stream ends, it is opened again (unless stopping).
    client_
        .WatchQueue(
            request, call, [] {},
            [&](const v1::QueueEvent& event) {
              received = true;
              OnQueueEvent(event);
            })
        .IgnoreError();
    if (received) backoff = absl::Seconds(1);
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    // Reconnects after the broker restarts, without hammering it.
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff);
    if (stopping_) return;
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

void ConsoleGateway::SampleLoop() {
  while (true) {
    const absl::StatusOr<v1::GetQueueStatsResponse> response =
        client_.GetQueueStats(v1::GetQueueStatsRequest(), CallFor(""));
    const absl::Time now = options_.clock();
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (response.ok()) {
      stats_error_.clear();
      for (const v1::QueueStats& stats : response->queues()) {
        auto& samples = samples_[stats.queue()];
        samples.push_back(
            DepthSample{now, stats.ready_count(), stats.claimed_count()});
        while (!samples.empty() &&
               samples.front().at < now - options_.stats_retention) {
          samples.pop_front();
        }
      }
    } else {
      stats_error_ = StatusCodeName(response.status().code());
    }
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.stats_interval);
    if (stopping_) return;
  }
}

}  // namespace referral::clients
