// ReferralIntake: partner agencies submit referrals, follow them and receive
// the front door's outcome.
#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/json_log.h"
#include "services/broker_services.h"
#include "services/referral_views.h"
#include "services/request_checks.h"
#include "services/service_replies.h"

namespace referral::server {

// The referral, if the caller may see it. Another agency's referral is
// NOT_FOUND, exactly as an unknown one, so that existence does not leak.
absl::StatusOr<storage::StoredReferral> IntakeService::OwnReferral(
    const Caller& caller, const std::string& referral_id) const {
  absl::StatusOr<storage::StoredReferral> record =
      context_.store->GetReferral(referral_id);
  if (record.ok() && caller.IsAgency() &&
      record->agency_id() != caller.agency_id) {
    return absl::NotFoundError("referral not found");
  }
  return record;
}

namespace {

// The most submissions one SubmitReferrals call may carry.
constexpr int kMaxReferralsPerBatch = 500;

void LogReceived(const v1::SubmitReferralResponse& response, LogLines& log) {
  log.Add(LogLevel::kInfo, "referral_received",
          {{"referral_id", response.referral_id()},
           {"queue", response.queue()},
           {"duplicate", response.duplicate() ? "true" : "false"}});
}

// The results of one SubmitReferrals call, filled in by the store's
// callbacks (on completion-pool threads, each writing only its own
// result); whichever callback comes last finishes the call.
class BatchResults {
 public:
  BatchResults(grpc::ServerUnaryReactor* reactor,
               v1::SubmitReferralsResponse* response, int pending)
      : reactor_(reactor), response_(response), pending_(pending) {}

  void Record(int index, absl::StatusOr<storage::SubmitResult> result) {
    v1::SubmitReferralResult& slot = *response_->mutable_results(index);
    if (result.ok()) {
      *slot.mutable_accepted() = ToSubmitResponse(*result);
    } else {
      SetError(result.status(), slot);
    }
    // acq_rel: the last callback sees every other callback's result.
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      {
        LogLines log;
        for (const v1::SubmitReferralResult& done : response_->results()) {
          if (done.has_accepted()) LogReceived(done.accepted(), log);
        }
      }
      reactor_->Finish(grpc::Status::OK);
    }
  }

  static void SetError(const absl::Status& status,
                       v1::SubmitReferralResult& slot) {
    const grpc::Status wire = ToGrpcStatus(status);
    slot.set_code(static_cast<int32_t>(wire.error_code()));
    slot.set_message(wire.error_message());
  }

 private:
  grpc::ServerUnaryReactor* const reactor_;
  v1::SubmitReferralsResponse* const response_;
  std::atomic<int> pending_;
};

}  // namespace

absl::StatusOr<storage::SubmitCommand> IntakeService::PlanForCaller(
    const Caller& caller, const v1::SubmitReferralRequest& request,
    absl::Time now, const FrontDoorRules& rules) const {
  // The agency recorded is the authenticated one, never what the referral
  // claims; only in development is the referral's own field trusted.
  const v1::SubmitReferralRequest* scoped = &request;
  v1::SubmitReferralRequest authenticated;
  if (caller.IsAgency()) {
    authenticated = request;
    authenticated.mutable_referral()->mutable_referrer()->set_agency_id(
        caller.agency_id);
    scoped = &authenticated;
  }
  const std::string& agency = scoped->referral().referrer().agency_id();
  absl::StatusOr<storage::SubmitCommand> command =
      PlanSubmission(*scoped, agency, now, rules, context_.intake);
  if (!command.ok()) {
    // The message names fields, never values (see FieldViolations).
    LogEvent(LogLevel::kInfo, "referral_rejected",
             {{"agency", agency},
              {"code", absl::StatusCodeToString(command.status().code())},
              {"reason", std::string(command.status().message())}});
    return command.status();
  }
  command->audit = AuditOf(caller);
  return command;
}

grpc::ServerUnaryReactor* IntakeService::SubmitReferral(
    grpc::CallbackServerContext* call, const v1::SubmitReferralRequest* request,
    v1::SubmitReferralResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kSubmitReferral);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::StatusOr<storage::SubmitCommand> command = PlanForCaller(
      *caller, *request, context_.clock(), *context_.rules->Current());
  if (!command.ok()) return Reply(call, command.status());

  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  context_.store->Commit(
      *std::move(command),
      FinishWhenCommitted<storage::SubmitResult>(
          reactor, [response](const storage::SubmitResult& result) {
            *response = ToSubmitResponse(result);
            LogLines log;
            LogReceived(*response, log);
          }));
  return reactor;
}

grpc::ServerUnaryReactor* IntakeService::SubmitReferrals(
    grpc::CallbackServerContext* call,
    const v1::SubmitReferralsRequest* request,
    v1::SubmitReferralsResponse* response) {
  const int count = request->referrals_size();
  absl::StatusOr<Caller> caller = context_.authorizer->Authorize(
      *call, BrokerMethod::kSubmitReferrals, std::max(count, 1));
  if (!caller.ok()) return Reply(call, caller.status());
  if (count == 0 || count > kMaxReferralsPerBatch) {
    return Reply(call, absl::InvalidArgumentError(absl::StrCat(
                           "referrals: must hold 1 to ", kMaxReferralsPerBatch,
                           " submissions (got ", count, ")")));
  }

  // Every submission is planned against the same time and rules, then all
  // are handed to the store at once so that they share group commits.
  const absl::Time now = context_.clock();
  std::shared_ptr<const FrontDoorRules> rules = context_.rules->Current();
  std::vector<std::pair<int, storage::SubmitCommand>> accepted;
  accepted.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    v1::SubmitReferralResult* slot = response->add_results();
    absl::StatusOr<storage::SubmitCommand> command =
        PlanForCaller(*caller, request->referrals(i), now, *rules);
    if (command.ok()) {
      accepted.emplace_back(i, *std::move(command));
    } else {
      BatchResults::SetError(command.status(), *slot);
    }
  }
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  if (accepted.empty()) {
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  auto results = std::make_shared<BatchResults>(
      reactor, response, static_cast<int>(accepted.size()));
  for (auto& [index, command] : accepted) {
    context_.store->Commit(
        std::move(command),
        [results, index = index](absl::StatusOr<storage::SubmitResult> r) {
          results->Record(index, std::move(r));
        });
  }
  return reactor;
}

grpc::ServerUnaryReactor* IntakeService::GetReferralStatus(
    grpc::CallbackServerContext* call,
    const v1::GetReferralStatusRequest* request,
    v1::GetReferralStatusResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kGetReferralStatus);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::Status valid = CheckReferralId(request->referral_id());
  if (!valid.ok()) return Reply(call, valid);
  absl::StatusOr<storage::StoredReferral> record =
      OwnReferral(*caller, request->referral_id());
  if (!record.ok()) {
    // A well-formed but unknown (or another agency's) reference is worth a
    // record; a malformed one is caller text and is not kept.
    const bool named = record.status().code() == absl::StatusCode::kNotFound;
    return ReplyAudited(call, context_.store, *caller, "status_read",
                        named ? request->referral_id() : "", record.status());
  }
  *response = ToStatusResponse(*record, context_.clock());
  return ReplyAudited(call, context_.store, *caller, "status_read",
                      request->referral_id(), absl::OkStatus());
}

grpc::ServerUnaryReactor* IntakeService::ListOutcomes(
    grpc::CallbackServerContext* call, const v1::ListOutcomesRequest* request,
    v1::ListOutcomesResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kListOutcomes);
  if (!caller.ok()) return Reply(call, caller.status());
  // An agency lists its own outcomes: the field may be left empty, and
  // naming another agency is refused.
  std::string agency = request->agency();
  if (caller->IsAgency()) {
    if (!agency.empty() && agency != caller->agency_id) {
      return Reply(call, absl::PermissionDeniedError(
                             "agency: may only list its own outcomes"));
    }
    agency = caller->agency_id;
  }
  absl::Status valid = CheckAgency(agency);
  if (!valid.ok()) return Reply(call, valid);
  absl::StatusOr<storage::ReferralPage> page = context_.store->List(
      storage::Listing::kOutcomes, agency,
      PageSize(request->page_size(), 100, 1000), request->page_token());
  if (!page.ok()) return Reply(call, page.status());
  for (const storage::StoredReferral& record : page->referrals) {
    *response->add_outcomes() = ToOutcome(record);
  }
  response->set_next_page_token(page->next_page_token);
  return ReplyAudited(call, context_.store, *caller, "list_outcomes", "",
                      absl::OkStatus());
}

grpc::ServerUnaryReactor* IntakeService::AcknowledgeOutcome(
    grpc::CallbackServerContext* call,
    const v1::AcknowledgeOutcomeRequest* request,
    v1::AcknowledgeOutcomeResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kAcknowledgeOutcome);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::Status valid = CheckReferralId(request->referral_id());
  if (!valid.ok()) return Reply(call, valid);
  absl::StatusOr<storage::StoredReferral> record =
      OwnReferral(*caller, request->referral_id());
  if (!record.ok()) return Reply(call, record.status());

  storage::AcknowledgeCommand command{
      .referral_id = request->referral_id(),
      .agency_id = record->agency_id(),
      .actor = "agency:" + record->agency_id(),
  };
  command.audit = AuditOf(*caller);
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  context_.store->Commit(
      std::move(command),
      FinishWhenCommitted<storage::AcknowledgeResult>(
          reactor, [response](const storage::AcknowledgeResult& result) {
            *response->mutable_acknowledged_at() =
                ToTimestamp(result.acknowledged_at);
            response->set_already_acknowledged(result.already_acknowledged);
          }));
  return reactor;
}

}  // namespace referral::server
