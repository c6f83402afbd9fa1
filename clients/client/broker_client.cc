#include "broker_client.h"

#include <grpcpp/support/sync_stream.h>

#include "broker_channel.h"

namespace referral::clients {
namespace {

// The one way every unary call is made: the deadline and on-behalf-of from
// `options`, the canceller bound while the call runs, gRPC's status turned
// into absl::Status.
template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> Unary(
    Stub& stub,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                 Response*),
    const Request& request, const CallOptions& options) {
  grpc::ClientContext context;
  BrokerClient::PrepareContext(options, &context);
  if (options.canceller != nullptr) options.canceller->Bind(&context);
  Response response;
  const grpc::Status status = (stub.*method)(&context, request, &response);
  if (options.canceller != nullptr) options.canceller->Unbind();
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

}  // namespace

BrokerClient::BrokerClient(
    const std::shared_ptr<grpc::ChannelInterface>& channel)
    : intake_(v1::ReferralIntake::NewStub(channel)),
      triage_(v1::Triage::NewStub(channel)),
      operations_(v1::Operations::NewStub(channel)),
      health_(grpc::health::v1::Health::NewStub(channel)) {}

void BrokerClient::PrepareContext(const CallOptions& options,
                                  grpc::ClientContext* context) {
  SetTimeout(context, options.timeout);
  if (!options.on_behalf_of.empty()) {
    context->AddMetadata(kOnBehalfOfMetadataKey, options.on_behalf_of);
  }
}

absl::StatusOr<v1::SubmitReferralResponse> BrokerClient::SubmitReferral(
    const v1::SubmitReferralRequest& request,
    const CallOptions& options) const {
  return Unary(*intake_, &v1::ReferralIntake::Stub::SubmitReferral, request,
               options);
}

absl::StatusOr<v1::SubmitReferralsResponse> BrokerClient::SubmitReferrals(
    const v1::SubmitReferralsRequest& request,
    const CallOptions& options) const {
  return Unary(*intake_, &v1::ReferralIntake::Stub::SubmitReferrals, request,
               options);
}

absl::StatusOr<v1::GetReferralStatusResponse> BrokerClient::GetReferralStatus(
    const v1::GetReferralStatusRequest& request,
    const CallOptions& options) const {
  return Unary(*intake_, &v1::ReferralIntake::Stub::GetReferralStatus, request,
               options);
}

absl::StatusOr<v1::ListOutcomesResponse> BrokerClient::ListOutcomes(
    const v1::ListOutcomesRequest& request, const CallOptions& options) const {
  return Unary(*intake_, &v1::ReferralIntake::Stub::ListOutcomes, request,
               options);
}

absl::StatusOr<v1::AcknowledgeOutcomeResponse> BrokerClient::AcknowledgeOutcome(
    const v1::AcknowledgeOutcomeRequest& request,
    const CallOptions& options) const {
  return Unary(*intake_, &v1::ReferralIntake::Stub::AcknowledgeOutcome, request,
               options);
}

absl::StatusOr<v1::ListQueueResponse> BrokerClient::ListQueue(
    const v1::ListQueueRequest& request, const CallOptions& options) const {
  return Unary(*triage_, &v1::Triage::Stub::ListQueue, request, options);
}

absl::StatusOr<v1::ClaimReferralsResponse> BrokerClient::ClaimReferrals(
    const v1::ClaimReferralsRequest& request,
    const CallOptions& options) const {
  return Unary(*triage_, &v1::Triage::Stub::ClaimReferrals, request, options);
}

absl::StatusOr<v1::ExtendClaimResponse> BrokerClient::ExtendClaim(
    const v1::ExtendClaimRequest& request, const CallOptions& options) const {
  return Unary(*triage_, &v1::Triage::Stub::ExtendClaim, request, options);
}

absl::StatusOr<v1::ReleaseReferralResponse> BrokerClient::ReleaseReferral(
    const v1::ReleaseReferralRequest& request,
    const CallOptions& options) const {
  return Unary(*triage_, &v1::Triage::Stub::ReleaseReferral, request, options);
}

absl::StatusOr<v1::RecordDecisionResponse> BrokerClient::RecordDecision(
    const v1::RecordDecisionRequest& request,
    const CallOptions& options) const {
  return Unary(*triage_, &v1::Triage::Stub::RecordDecision, request, options);
}

absl::StatusOr<v1::ListNoticesResponse> BrokerClient::ListNotices(
    const v1::ListNoticesRequest& request, const CallOptions& options) const {
  return Unary(*triage_, &v1::Triage::Stub::ListNotices, request, options);
}

absl::Status BrokerClient::WatchQueue(
    const v1::WatchQueueRequest& request, const CallOptions& options,
    absl::FunctionRef<void()> on_registered,
    absl::FunctionRef<void(const v1::QueueEvent&)> on_event) const {
  grpc::ClientContext context;
  PrepareContext(options, &context);
  if (options.canceller != nullptr) options.canceller->Bind(&context);
  std::unique_ptr<grpc::ClientReader<v1::QueueEvent>> reader =
      triage_->WatchQueue(&context, request);
  // The broker sends headers once the stream is registered.
  reader->WaitForInitialMetadata();
  on_registered();
  v1::QueueEvent event;
  while (reader->Read(&event)) on_event(event);
  const grpc::Status status = reader->Finish();
  if (options.canceller != nullptr) options.canceller->Unbind();
  return FromGrpcStatus(status);
}

absl::StatusOr<v1::GetQueueStatsResponse> BrokerClient::GetQueueStats(
    const v1::GetQueueStatsRequest& request, const CallOptions& options) const {
  return Unary(*operations_, &v1::Operations::Stub::GetQueueStats, request,
               options);
}

absl::StatusOr<v1::ListDeadLettersResponse> BrokerClient::ListDeadLetters(
    const v1::ListDeadLettersRequest& request,
    const CallOptions& options) const {
  return Unary(*operations_, &v1::Operations::Stub::ListDeadLetters, request,
               options);
}

absl::StatusOr<v1::RequeueDeadLetterResponse> BrokerClient::RequeueDeadLetter(
    const v1::RequeueDeadLetterRequest& request,
    const CallOptions& options) const {
  return Unary(*operations_, &v1::Operations::Stub::RequeueDeadLetter, request,
               options);
}

absl::StatusOr<v1::ExportAuditResponse> BrokerClient::ExportAudit(
    const v1::ExportAuditRequest& request, const CallOptions& options) const {
  return Unary(*operations_, &v1::Operations::Stub::ExportAudit, request,
               options);
}

absl::StatusOr<v1::VerifyAuditResponse> BrokerClient::VerifyAudit(
    const v1::VerifyAuditRequest& request, const CallOptions& options) const {
  return Unary(*operations_, &v1::Operations::Stub::VerifyAudit, request,
               options);
}

absl::StatusOr<v1::ReloadConfigResponse> BrokerClient::ReloadConfig(
    const v1::ReloadConfigRequest& request, const CallOptions& options) const {
  return Unary(*operations_, &v1::Operations::Stub::ReloadConfig, request,
               options);
}

absl::StatusOr<v1::CreateBackupResponse> BrokerClient::CreateBackup(
    const v1::CreateBackupRequest& request, const CallOptions& options) const {
  return Unary(*operations_, &v1::Operations::Stub::CreateBackup, request,
               options);
}

absl::StatusOr<v1::ListBackupsResponse> BrokerClient::ListBackups(
    const v1::ListBackupsRequest& request, const CallOptions& options) const {
  return Unary(*operations_, &v1::Operations::Stub::ListBackups, request,
               options);
}

absl::StatusOr<v1::VerifyBackupResponse> BrokerClient::VerifyBackup(
    const v1::VerifyBackupRequest& request, const CallOptions& options) const {
  return Unary(*operations_, &v1::Operations::Stub::VerifyBackup, request,
               options);
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse> BrokerClient::CheckHealth(
    const grpc::health::v1::HealthCheckRequest& request,
    const CallOptions& options) const {
  return Unary(*health_, &grpc::health::v1::Health::Stub::Check, request,
               options);
}

}  // namespace referral::clients
