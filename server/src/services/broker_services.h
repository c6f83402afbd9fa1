// The gRPC services: thin adapters between the wire and the store. Each
// handler checks its request, hands mutations to the store (which calls back
// after the synced commit, off the reactor thread's critical path) and maps
// errors to gRPC statuses in one place (grpc_status.h).
#ifndef REFERRAL_SERVER_BROKER_SERVICES_H_
#define REFERRAL_SERVER_BROKER_SERVICES_H_

#include <grpcpp/grpcpp.h>

#include <functional>

#include "absl/time/time.h"
#include "operations/background_work.h"
#include "referral/v1/broker.grpc.pb.h"
#include "rules/front_door_rules.h"
#include "rules/intake_planner.h"
#include "security/call_authorizer.h"
#include "services/queue_watchers.h"
#include "storage/referral_store.h"

namespace referral::server {

// What every service needs; owned by the broker, outliving the services.
struct ServiceContext {
  storage::ReferralStore* store = nullptr;
  FrontDoorRulesSource* rules = nullptr;
  QueueWatchers* watchers = nullptr;
  const CallAuthorizer* authorizer = nullptr;
  // Re-reads routing and calendar (the broker's ReloadRules).
  std::function<absl::Status()> reload_rules;
  IntakePolicy intake;
  absl::Duration default_lease = absl::Minutes(30);
  absl::Duration max_lease = absl::Hours(24);
  // An unacknowledged outcome older than this is overdue in the ops stats.
  absl::Duration outcome_ack_overdue = absl::Hours(24);
  // The store's time-to-decision window, shown with the figures.
  absl::Duration decision_stats_window = absl::Hours(24 * 28);
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  // Online backups: where they go (empty: refused) and the key they are
  // encrypted with (the store's own).
  std::string backup_dir;
  std::string encryption_key_file;
  // Slow admin reads (verifying a backup) run here, off the reactors.
  BackgroundWork* background = nullptr;
};

class IntakeService final : public v1::ReferralIntake::CallbackService {
 public:
  explicit IntakeService(const ServiceContext* context) : context_(*context) {}

  grpc::ServerUnaryReactor* SubmitReferral(
      grpc::CallbackServerContext* call,
      const v1::SubmitReferralRequest* request,
      v1::SubmitReferralResponse* response) override;
  grpc::ServerUnaryReactor* SubmitReferrals(
      grpc::CallbackServerContext* call,
      const v1::SubmitReferralsRequest* request,
      v1::SubmitReferralsResponse* response) override;
  grpc::ServerUnaryReactor* GetReferralStatus(
      grpc::CallbackServerContext* call,
      const v1::GetReferralStatusRequest* request,
      v1::GetReferralStatusResponse* response) override;
  grpc::ServerUnaryReactor* ListOutcomes(
      grpc::CallbackServerContext* call, const v1::ListOutcomesRequest* request,
      v1::ListOutcomesResponse* response) override;
  grpc::ServerUnaryReactor* AcknowledgeOutcome(
      grpc::CallbackServerContext* call,
      const v1::AcknowledgeOutcomeRequest* request,
      v1::AcknowledgeOutcomeResponse* response) override;

 private:
  // Checks and routes one submission for `caller` (logging a refusal).
  absl::StatusOr<storage::SubmitCommand> PlanForCaller(
      const Caller& caller, const v1::SubmitReferralRequest& request,
      absl::Time now, const FrontDoorRules& rules) const;
  absl::StatusOr<storage::StoredReferral> OwnReferral(
      const Caller& caller, const std::string& referral_id) const;

  const ServiceContext& context_;
};

class TriageService final : public v1::Triage::CallbackService {
 public:
  explicit TriageService(const ServiceContext* context) : context_(*context) {}

  grpc::ServerUnaryReactor* ListQueue(grpc::CallbackServerContext* call,
                                      const v1::ListQueueRequest* request,
                                      v1::ListQueueResponse* response) override;
  grpc::ServerUnaryReactor* ClaimReferrals(
      grpc::CallbackServerContext* call,
      const v1::ClaimReferralsRequest* request,
      v1::ClaimReferralsResponse* response) override;
  grpc::ServerUnaryReactor* ExtendClaim(
      grpc::CallbackServerContext* call, const v1::ExtendClaimRequest* request,
      v1::ExtendClaimResponse* response) override;
  grpc::ServerUnaryReactor* ReleaseReferral(
      grpc::CallbackServerContext* call,
      const v1::ReleaseReferralRequest* request,
      v1::ReleaseReferralResponse* response) override;
  grpc::ServerUnaryReactor* RecordDecision(
      grpc::CallbackServerContext* call,
      const v1::RecordDecisionRequest* request,
      v1::RecordDecisionResponse* response) override;
  grpc::ServerWriteReactor<v1::QueueEvent>* WatchQueue(
      grpc::CallbackServerContext* call,
      const v1::WatchQueueRequest* request) override;
  grpc::ServerUnaryReactor* ListNotices(
      grpc::CallbackServerContext* call, const v1::ListNoticesRequest* request,
      v1::ListNoticesResponse* response) override;

 private:
  const ServiceContext& context_;
};

class OperationsService final : public v1::Operations::CallbackService {
 public:
  explicit OperationsService(const ServiceContext* context)
      : context_(*context) {}

  grpc::ServerUnaryReactor* GetQueueStats(
      grpc::CallbackServerContext* call,
      const v1::GetQueueStatsRequest* request,
      v1::GetQueueStatsResponse* response) override;
  grpc::ServerUnaryReactor* ListDeadLetters(
      grpc::CallbackServerContext* call,
      const v1::ListDeadLettersRequest* request,
      v1::ListDeadLettersResponse* response) override;
  grpc::ServerUnaryReactor* RequeueDeadLetter(
      grpc::CallbackServerContext* call,
      const v1::RequeueDeadLetterRequest* request,
      v1::RequeueDeadLetterResponse* response) override;
  grpc::ServerUnaryReactor* ExportAudit(
      grpc::CallbackServerContext* call, const v1::ExportAuditRequest* request,
      v1::ExportAuditResponse* response) override;
  grpc::ServerUnaryReactor* VerifyAudit(
      grpc::CallbackServerContext* call, const v1::VerifyAuditRequest* request,
      v1::VerifyAuditResponse* response) override;
  grpc::ServerUnaryReactor* ReloadConfig(
      grpc::CallbackServerContext* call, const v1::ReloadConfigRequest* request,
      v1::ReloadConfigResponse* response) override;
  grpc::ServerUnaryReactor* CreateBackup(
      grpc::CallbackServerContext* call, const v1::CreateBackupRequest* request,
      v1::CreateBackupResponse* response) override;
  grpc::ServerUnaryReactor* ListBackups(
      grpc::CallbackServerContext* call, const v1::ListBackupsRequest* request,
      v1::ListBackupsResponse* response) override;
  grpc::ServerUnaryReactor* VerifyBackup(
      grpc::CallbackServerContext* call, const v1::VerifyBackupRequest* request,
      v1::VerifyBackupResponse* response) override;

 private:
  const ServiceContext& context_;
};

}  // namespace referral::server

#endif  // REFERRAL_SERVER_BROKER_SERVICES_H_
