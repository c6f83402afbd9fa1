// The broker's public API as one typed client, for every client program
// (referral_cli, the triage console's gateway, referral_loadgen): each
// method takes the request and returns the response, or an absl::Status
// with the broker's code and message. Each call gets its deadline and, when
// given, the staff member it is made for (x-referral-on-behalf-of, for the
// broker's audit trail) from CallOptions; TLS and the connection come from
// the channel (broker_channel.h).
//
// WatchQueue, a stream, hands each event to a callback until the stream
// ends. The load generator keeps many calls in flight through gRPC's
// callback API: it reaches the stubs' async() interfaces through intake()
// and triage() and prepares each call's context with PrepareContext, so its
// calls get the same deadline and metadata as everyone else's.
//
// Threading: a BrokerClient holds only its stubs and may be used from many
// threads at once.
#ifndef REFERRAL_CLIENTS_BROKER_CLIENT_H_
#define REFERRAL_CLIENTS_BROKER_CLIENT_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "call_canceller.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "referral/v1/broker.grpc.pb.h"

namespace referral::clients {

struct CallOptions {
  // From the start of the call; InfiniteDuration: no deadline (a stream
  // that runs until cancelled).
  absl::Duration timeout = absl::Seconds(30);
  // The staff member the call is made for, sent as x-referral-on-behalf-of;
  // empty: not sent (the channel may send its own, see ChannelOptions).
  std::string on_behalf_of;
  // Optional: lets another thread cancel the call while it runs.
  CallCanceller* canceller = nullptr;
};

class BrokerClient {
 public:
  explicit BrokerClient(const std::shared_ptr<grpc::ChannelInterface>& channel);

  // --- ReferralIntake: partner agencies --------------------------------------
  absl::StatusOr<v1::SubmitReferralResponse> SubmitReferral(
      const v1::SubmitReferralRequest& request,
      const CallOptions& options) const;
  absl::StatusOr<v1::SubmitReferralsResponse> SubmitReferrals(
      const v1::SubmitReferralsRequest& request,
      const CallOptions& options) const;
  absl::StatusOr<v1::GetReferralStatusResponse> GetReferralStatus(
      const v1::GetReferralStatusRequest& request,
      const CallOptions& options) const;
  absl::StatusOr<v1::ListOutcomesResponse> ListOutcomes(
      const v1::ListOutcomesRequest& request, const CallOptions& options) const;
  absl::StatusOr<v1::AcknowledgeOutcomeResponse> AcknowledgeOutcome(
      const v1::AcknowledgeOutcomeRequest& request,
      const CallOptions& options) const;

  // --- Triage: the front door -----------------------------------------------
  absl::StatusOr<v1::ListQueueResponse> ListQueue(
      const v1::ListQueueRequest& request, const CallOptions& options) const;
  absl::StatusOr<v1::ClaimReferralsResponse> ClaimReferrals(
      const v1::ClaimReferralsRequest& request,
      const CallOptions& options) const;
  absl::StatusOr<v1::ExtendClaimResponse> ExtendClaim(
      const v1::ExtendClaimRequest& request, const CallOptions& options) const;
  absl::StatusOr<v1::ReleaseReferralResponse> ReleaseReferral(
      const v1::ReleaseReferralRequest& request,
      const CallOptions& options) const;
  absl::StatusOr<v1::RecordDecisionResponse> RecordDecision(
      const v1::RecordDecisionRequest& request,
      const CallOptions& options) const;
  absl::StatusOr<v1::ListNoticesResponse> ListNotices(
      const v1::ListNoticesRequest& request, const CallOptions& options) const;
  // Hands each event to `on_event` until the stream ends (the broker ends
  // it, the deadline passes or the call is cancelled), then returns how it
  // ended. `on_registered` runs once, when the broker has registered the
  // stream: from then on no event on the queue is missed.
  absl::Status WatchQueue(
      const v1::WatchQueueRequest& request, const CallOptions& options,
      absl::FunctionRef<void()> on_registered,
      absl::FunctionRef<void(const v1::QueueEvent&)> on_event) const;

  // --- Operations ------------------------------------------------------------
  absl::StatusOr<v1::GetQueueStatsResponse> GetQueueStats(
      const v1::GetQueueStatsRequest& request,
      const CallOptions& options) const;
  absl::StatusOr<v1::ListDeadLettersResponse> ListDeadLetters(
      const v1::ListDeadLettersRequest& request,
      const CallOptions& options) const;
  absl::StatusOr<v1::RequeueDeadLetterResponse> RequeueDeadLetter(
      const v1::RequeueDeadLetterRequest& request,
      const CallOptions& options) const;
  absl::StatusOr<v1::ExportAuditResponse> ExportAudit(
      const v1::ExportAuditRequest& request, const CallOptions& options) const;
  absl::StatusOr<v1::VerifyAuditResponse> VerifyAudit(
      const v1::VerifyAuditRequest& request, const CallOptions& options) const;
  absl::StatusOr<v1::ReloadConfigResponse> ReloadConfig(
      const v1::ReloadConfigRequest& request, const CallOptions& options) const;
  absl::StatusOr<v1::CreateBackupResponse> CreateBackup(
      const v1::CreateBackupRequest& request, const CallOptions& options) const;
  absl::StatusOr<v1::ListBackupsResponse> ListBackups(
      const v1::ListBackupsRequest& request, const CallOptions& options) const;
  absl::StatusOr<v1::VerifyBackupResponse> VerifyBackup(
      const v1::VerifyBackupRequest& request, const CallOptions& options) const;

  // --- grpc.health.v1 --------------------------------------------------------
  absl::StatusOr<grpc::health::v1::HealthCheckResponse> CheckHealth(
      const grpc::health::v1::HealthCheckRequest& request,
      const CallOptions& options) const;

  // --- For gRPC's callback API ----------------------------------------------
  // Sets `options`' deadline and on-behalf-of on a context of the caller's
  // own (the canceller is the caller's to bind).
  static void PrepareContext(const CallOptions& options,
                             grpc::ClientContext* context);
  v1::ReferralIntake::Stub& intake() const { return *intake_; }
  v1::Triage::Stub& triage() const { return *triage_; }

 private:
  std::unique_ptr<v1::ReferralIntake::Stub> intake_;
  std::unique_ptr<v1::Triage::Stub> triage_;
  std::unique_ptr<v1::Operations::Stub> operations_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_BROKER_CLIENT_H_
