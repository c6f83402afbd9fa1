// ReferralIntake: partner agencies submit referrals, follow them and receive
// the front door's outcome.
#include <string>
#include <utility>

#include "broker_services.h"
#include "referral_views.h"
#include "request_checks.h"
#include "service_replies.h"

namespace referral::server {

grpc::ServerUnaryReactor* IntakeService::SubmitReferral(
    grpc::CallbackServerContext* call, const v1::SubmitReferralRequest* request,
    v1::SubmitReferralResponse* response) {
  const absl::Time now = context_.clock();
  std::shared_ptr<const FrontDoorRules> rules = context_.rules->Current();
  const std::string& agency = request->referral().referrer().agency_id();
  absl::StatusOr<storage::SubmitCommand> command =
      PlanSubmission(*request, agency, now, *rules, context_.intake);
  if (!command.ok()) return Reply(call, command.status());

  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  context_.store->Submit(
      *std::move(command),
      FinishWhenCommitted<storage::SubmitResult>(
          reactor, [response](const storage::SubmitResult& result) {
            *response = ToSubmitResponse(result);
          }));
  return reactor;
}

grpc::ServerUnaryReactor* IntakeService::GetReferralStatus(
    grpc::CallbackServerContext* call,
    const v1::GetReferralStatusRequest* request,
    v1::GetReferralStatusResponse* response) {
  absl::Status valid = CheckReferralId(request->referral_id());
  if (!valid.ok()) return Reply(call, valid);
  absl::StatusOr<storage::StoredReferral> record =
      context_.store->GetReferral(request->referral_id());
  if (!record.ok()) return Reply(call, record.status());
  *response = ToStatusResponse(*record, context_.clock());
  return Reply(call, absl::OkStatus());
}

grpc::ServerUnaryReactor* IntakeService::ListOutcomes(
    grpc::CallbackServerContext* call, const v1::ListOutcomesRequest* request,
    v1::ListOutcomesResponse* response) {
  absl::Status valid = CheckAgency(request->agency());
  if (!valid.ok()) return Reply(call, valid);
  absl::StatusOr<storage::ReferralPage> page = context_.store->ListOutcomes(
      request->agency(), PageSize(request->page_size(), 100, 1000),
      request->page_token());
  if (!page.ok()) return Reply(call, page.status());
  for (const storage::StoredReferral& record : page->referrals) {
    *response->add_outcomes() = ToOutcome(record);
  }
  response->set_next_page_token(page->next_page_token);
  return Reply(call, absl::OkStatus());
}

grpc::ServerUnaryReactor* IntakeService::AcknowledgeOutcome(
    grpc::CallbackServerContext* call,
    const v1::AcknowledgeOutcomeRequest* request,
    v1::AcknowledgeOutcomeResponse* response) {
  absl::Status valid = CheckReferralId(request->referral_id());
  if (!valid.ok()) return Reply(call, valid);
  // Until agencies authenticate, the acknowledging agency is the one the
  // referral is recorded against.
  absl::StatusOr<storage::StoredReferral> record =
      context_.store->GetReferral(request->referral_id());
  if (!record.ok()) return Reply(call, record.status());

  storage::AcknowledgeCommand command{
      .referral_id = request->referral_id(),
      .agency_id = record->agency_id(),
      .actor = "agency:" + record->agency_id(),
  };
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  context_.store->AcknowledgeOutcome(
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
