// Triage: front-door staff list, claim, extend, release and decide, and
// watch queues live; a notified queue (the out-of-hours emergency duty team)
// lists the referrals it was told about.
#include <string>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "services/broker_services.h"
#include "services/referral_views.h"
#include "services/request_checks.h"
#include "services/service_replies.h"

namespace referral::server {
namespace {

// A queue is known when routing names it or it still holds referrals (a
// reload may drop a queue that has work left in it).
bool QueueExists(const ServiceContext& context, const std::string& queue) {
  if (absl::c_linear_search(context.rules->Current()->routing->queue_names(),
                            queue)) {
    return true;
  }
  // Asked of memory: the full counts read the indexes.
  return context.store->ReadyCount(queue).has_value();
}

absl::Status CheckQueueExists(const ServiceContext& context,
                              const std::string& queue) {
  if (QueueExists(context, queue)) return absl::OkStatus();
  return absl::NotFoundError("queue: no such queue");
}

// The same fields, with the same rules, as a ListQueue request.
absl::Status CheckListNotices(const v1::ListNoticesRequest& request) {
  v1::ListQueueRequest same;
  same.set_queue(request.queue());
  *same.mutable_page() = request.page();
  return CheckListQueue(same);
}

// In development the worker's name is all there is; otherwise the
// authenticated principal (and the staff member it acts for).
std::string TriageActor(const Caller& caller, const std::string& worker) {
  if (caller.principal != nullptr) return caller.actor;
  return worker.empty() ? "triage" : "triage:" + worker;
}

// The caller may use the queue (PERMISSION_DENIED first, so a forbidden
// queue's existence does not leak) and it exists (NOT_FOUND).
absl::Status CheckQueueAccess(const ServiceContext& context,
                              const Caller& caller, const std::string& queue) {
  absl::Status allowed = context.authorizer->AuthorizeQueue(caller, queue);
  if (!allowed.ok()) return allowed;
  return CheckQueueExists(context, queue);
}

// A stream that ends at once with an error.
class RefusedWatch : public grpc::ServerWriteReactor<v1::QueueEvent> {
 public:
  explicit RefusedWatch(const absl::Status& status) {
    Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

// Earlier referrals about the same children, with their decisions so far.
void AddLinkedHistory(const ServiceContext& context,
                      const storage::StoredReferral& record,
                      v1::ClaimedReferral& claimed) {
  for (const auto& link : record.links()) {
    v1::LinkedReferral* linked = claimed.add_history();
    linked->set_referral_id(link.referral_id());
    linked->set_child_index(link.child_index());
    *linked->mutable_received_at() = MicrosToTimestamp(link.received_at_us());
    linked->set_agency_type(link.agency_type());
    linked->set_matched_by(link.matched_by());
    absl::StatusOr<storage::StoredReferral> earlier =
        context.store->GetReferral(link.referral_id());
    if (earlier.ok()) linked->set_decision(earlier->decision().decision());
  }
}

}  // namespace

grpc::ServerUnaryReactor* TriageService::ListQueue(
    grpc::CallbackServerContext* call, const v1::ListQueueRequest* request,
    v1::ListQueueResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kListQueue);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::Status valid = CheckListQueue(*request);
  if (valid.ok()) valid = CheckQueueAccess(context_, *caller, request->queue());
  if (!valid.ok()) return Reply(call, valid);
  absl::StatusOr<storage::ReferralPage> page =
      context_.store->List(storage::Listing::kQueue, request->queue(),
                           PageSize(request->page().page_size(), 50, 500),
                           request->page().page_token());
  if (!page.ok()) return Reply(call, page.status());
  const absl::Time now = context_.clock();
  for (const storage::StoredReferral& record : page->referrals) {
    *response->add_entries() = ToQueueEntry(record, now);
  }
  response->set_next_page_token(page->next_page_token);
  response->set_ready_count(
      context_.store->ReadyCount(request->queue()).value_or(0));
  return ReplyAudited(call, context_.store, *caller, "list_queue", "",
                      absl::OkStatus());
}

grpc::ServerUnaryReactor* TriageService::ClaimReferrals(
    grpc::CallbackServerContext* call, const v1::ClaimReferralsRequest* request,
    v1::ClaimReferralsResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kClaimReferrals);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::Status valid = CheckClaim(*request, context_.max_lease);
  if (valid.ok()) valid = CheckQueueAccess(context_, *caller, request->queue());
  if (!valid.ok()) return Reply(call, valid);

  storage::ClaimCommand command{
      .queue = request->queue(),
      .max = request->max(),
      .lease = request->lease_seconds() > 0
                   ? absl::Seconds(request->lease_seconds())
                   : context_.default_lease,
      .worker = request->worker(),
      .actor = TriageActor(*caller, request->worker()),
  };
  command.audit = AuditOf(*caller);
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  const ServiceContext* context = &context_;
  context_.store->Commit(
      std::move(command),
      FinishWhenCommitted<std::vector<storage::StoredReferral>>(
          reactor, [context, response](
                       const std::vector<storage::StoredReferral>& claimed) {
            const absl::Time now = context->clock();
            for (const storage::StoredReferral& record : claimed) {
              v1::ClaimedReferral* out = response->add_claims();
              *out = ToClaimedReferral(record, now);
              AddLinkedHistory(*context, record, *out);
            }
          }));
  return reactor;
}

grpc::ServerUnaryReactor* TriageService::ExtendClaim(
    grpc::CallbackServerContext* call, const v1::ExtendClaimRequest* request,
    v1::ExtendClaimResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kExtendClaim);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::Status valid = CheckExtend(*request, context_.max_lease);
  if (!valid.ok()) return Reply(call, valid);
  storage::ExtendCommand command{
      .referral_id = request->referral_id(),
      .lease_token = request->lease_token(),
      .lease = absl::Seconds(request->lease_seconds()),
      .actor = TriageActor(*caller, ""),
  };
  command.audit = AuditOf(*caller);
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  context_.store->Commit(std::move(command),
                         FinishWhenCommitted<absl::Time>(
                             reactor, [response](absl::Time expires_at) {
                               *response->mutable_lease_expires_at() =
                                   ToTimestamp(expires_at);
                             }));
  return reactor;
}

grpc::ServerUnaryReactor* TriageService::ReleaseReferral(
    grpc::CallbackServerContext* call,
    const v1::ReleaseReferralRequest* request,
    v1::ReleaseReferralResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kReleaseReferral);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::Status valid = CheckRelease(*request);
  if (!valid.ok()) return Reply(call, valid);
  storage::ReleaseCommand command{
      .referral_id = request->referral_id(),
      .lease_token = request->lease_token(),
      .reason = request->reason(),
      .actor = TriageActor(*caller, ""),
  };
  command.audit = AuditOf(*caller);
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  context_.store->Commit(std::move(command),
                         FinishWhenCommitted<v1::ReferralState>(
                             reactor, [response](v1::ReferralState state) {
                               response->set_state(state);
                             }));
  return reactor;
}

grpc::ServerUnaryReactor* TriageService::RecordDecision(
    grpc::CallbackServerContext* call, const v1::RecordDecisionRequest* request,
    v1::RecordDecisionResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kRecordDecision);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::Status valid = CheckDecision(*request);
  if (!valid.ok()) return Reply(call, valid);
  storage::DecideCommand command{
      .referral_id = request->referral_id(),
      .lease_token = request->lease_token(),
      .decision = request->decision(),
      .rationale = request->rationale(),
      .feedback = request->feedback(),
      .actor = TriageActor(*caller, ""),
  };
  command.audit = AuditOf(*caller);
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  context_.store->Commit(
      std::move(command),
      FinishWhenCommitted<absl::Time>(reactor, [response](absl::Time at) {
        *response->mutable_decided_at() = ToTimestamp(at);
        response->set_state(v1::REFERRAL_STATE_DECIDED);
      }));
  return reactor;
}

grpc::ServerUnaryReactor* TriageService::ListNotices(
    grpc::CallbackServerContext* call, const v1::ListNoticesRequest* request,
    v1::ListNoticesResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kListNotices);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::Status valid = CheckListNotices(*request);
  if (valid.ok()) valid = CheckQueueAccess(context_, *caller, request->queue());
  if (!valid.ok()) return Reply(call, valid);
  absl::StatusOr<storage::ReferralPage> page =
      context_.store->List(storage::Listing::kNotices, request->queue(),
                           PageSize(request->page().page_size(), 50, 500),
                           request->page().page_token());
  if (!page.ok()) return Reply(call, page.status());
  const absl::Time now = context_.clock();
  for (const storage::StoredReferral& record : page->referrals) {
    *response->add_notices() = ToNotice(record, now);
  }
  response->set_next_page_token(page->next_page_token);
  return ReplyAudited(call, context_.store, *caller, "list_notices", "",
                      absl::OkStatus());
}

grpc::ServerWriteReactor<v1::QueueEvent>* TriageService::WatchQueue(
    grpc::CallbackServerContext* call, const v1::WatchQueueRequest* request) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kWatchQueue);
  if (!caller.ok()) return new RefusedWatch(caller.status());
  absl::Status valid = CheckQueueField(request->queue());
  if (valid.ok()) valid = CheckQueueAccess(context_, *caller, request->queue());
  if (!valid.ok()) return new RefusedWatch(valid);
  // Recorded without waiting: a stream carries ids and codes, not the
  // content of any referral, and it should start at once.
  context_.store->Commit(
      storage::RecordAccessCommand{.principal = caller->audit_principal,
                                   .on_behalf_of = caller->on_behalf_of,
                                   .action = "watch",
                                   .referral_id = "",
                                   .result = "OK"},
      [](absl::StatusOr<absl::Time>) {});
  grpc::ServerWriteReactor<v1::QueueEvent>* watch =
      context_.watchers->Open(request->queue(), caller->audit_principal);
  if (watch == nullptr) {
    return new RefusedWatch(absl::ResourceExhaustedError(
        "too many open watch streams for this principal; close one first"));
  }
  return watch;
}

}  // namespace referral::server
