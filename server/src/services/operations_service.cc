// Operations: queue figures, timeliness and referrer-feedback backlog, and
// dead letters for ops staff. Counts, durations, agency ids and referral ids
// only, never personal data.
#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "base/hex.h"
#include "base/timestamps.h"
#include "services/broker_services.h"
#include "services/referral_views.h"
#include "services/request_checks.h"
#include "services/service_replies.h"
#include "storage/audit_trail.h"
#include "storage/backups.h"

namespace referral::server {

grpc::ServerUnaryReactor* OperationsService::GetQueueStats(
    grpc::CallbackServerContext* call, const v1::GetQueueStatsRequest* request,
    v1::GetQueueStatsResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kGetQueueStats);
  if (!caller.ok()) return Reply(call, caller.status());
  const absl::Time now = context_.clock();
  // Every configured queue is listed, empty or not, then any other queue
  // that still holds referrals; ordered by name.
  std::map<std::string, storage::QueueCounts> by_queue;
  for (const std::string& queue :
       context_.rules->Current()->routing->queue_names()) {
    by_queue[queue].queue = queue;
  }
  storage::StoreCounts counted = context_.store->GetCounts(
      {.now = now,
       .queues = true,
       .outcomes = true,
       .acknowledge_within = context_.outcome_ack_overdue});
  for (storage::QueueCounts& counts : counted.queues) {
    std::string name = counts.queue;
    by_queue[name] = std::move(counts);
  }
  const absl::Duration window = context_.decision_stats_window;
  for (const auto& [name, counts] : by_queue) {
    v1::QueueStats* stats = response->add_queues();
    stats->set_queue(name);
    stats->set_ready_count(counts.ready);
    stats->set_claimed_count(counts.claimed);
    stats->set_dead_letter_count(counts.dead_letters);
    if (counts.oldest_ready_received_at.has_value()) {
      *stats->mutable_oldest_ready_age() =
          ToDurationProto(now - *counts.oldest_ready_received_at);
    }
    stats->set_overdue_count(counts.overdue);
    stats->set_due_within_hour_count(counts.due_within_hour);
    stats->set_decisions_in_window(counts.decisions_in_window);
    if (counts.time_to_decision_p50.has_value()) {
      *stats->mutable_time_to_decision_p50() =
          ToDurationProto(*counts.time_to_decision_p50);
    }
    if (counts.time_to_decision_p90.has_value()) {
      *stats->mutable_time_to_decision_p90() =
          ToDurationProto(*counts.time_to_decision_p90);
    }
    if (counts.time_to_decision_p99.has_value()) {
      *stats->mutable_time_to_decision_p99() =
          ToDurationProto(*counts.time_to_decision_p99);
    }
    // A configured queue the store has never seen still shows the window.
    *stats->mutable_decision_window() = ToDurationProto(window);
    stats->set_notices_last_24h(counts.notices_last_24h);
  }
  // Referrer feedback: agencies with outcomes still to acknowledge. The
  // store lists them by agency id.
  for (const storage::OutcomeBacklog& backlog : counted.outcomes) {
    v1::AgencyFeedback* feedback = response->add_feedback();
    feedback->set_agency(backlog.agency_id);
    feedback->set_unacknowledged_count(backlog.unacknowledged);
    feedback->set_overdue_count(backlog.overdue);
    *feedback->mutable_oldest_unacknowledged_age() = ToDurationProto(
        std::max(now - backlog.oldest_decided_at, absl::ZeroDuration()));
  }
  *response->mutable_outcome_ack_overdue_after() =
      ToDurationProto(context_.outcome_ack_overdue);
  *response->mutable_at() = ToTimestamp(now);
  return Reply(call, absl::OkStatus());
}

grpc::ServerUnaryReactor* OperationsService::ListDeadLetters(
    grpc::CallbackServerContext* call,
    const v1::ListDeadLettersRequest* request,
    v1::ListDeadLettersResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kListDeadLetters);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::Status valid = CheckQueueField(request->queue());
  if (!valid.ok()) return Reply(call, valid);
  absl::StatusOr<storage::ReferralPage> page =
      context_.store->List(storage::Listing::kDeadLetters, request->queue(),
                           PageSize(request->page().page_size(), 50, 500),
                           request->page().page_token());
  if (!page.ok()) return Reply(call, page.status());
  for (const storage::StoredReferral& record : page->referrals) {
    *response->add_dead_letters() = ToDeadLetter(record);
  }
  response->set_next_page_token(page->next_page_token);
  return Reply(call, absl::OkStatus());
}

grpc::ServerUnaryReactor* OperationsService::RequeueDeadLetter(
    grpc::CallbackServerContext* call,
    const v1::RequeueDeadLetterRequest* request,
    v1::RequeueDeadLetterResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kRequeueDeadLetter);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::Status valid = CheckReferralId(request->referral_id());
  if (!valid.ok()) return Reply(call, valid);
  storage::RequeueCommand command{
      .referral_id = request->referral_id(),
      .actor = caller->principal != nullptr ? caller->actor : "ops",
  };
  command.audit = AuditOf(*caller);
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  context_.store->Commit(std::move(command),
                         FinishWhenCommitted<std::string>(
                             reactor, [response](const std::string& queue) {
                               response->set_queue(queue);
                               response->set_state(v1::REFERRAL_STATE_QUEUED);
                             }));
  return reactor;
}

grpc::ServerUnaryReactor* OperationsService::ExportAudit(
    grpc::CallbackServerContext* call, const v1::ExportAuditRequest* request,
    v1::ExportAuditResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kExportAudit);
  if (!caller.ok()) return Reply(call, caller.status());
  if (request->limit() < 0 || request->limit() > 100000) {
    return Reply(call, absl::InvalidArgumentError(
                           "limit: must be 0 (default 1000) to 100000"));
  }
  const absl::Time from = request->has_from() ? FromTimestamp(request->from())
                                              : absl::InfinitePast();
  const absl::Time to =
      request->has_to() ? FromTimestamp(request->to()) : context_.clock();
  absl::StatusOr<std::vector<storage::AuditRecord>> records =
      storage::ExportAudit(*context_.store, from, to,
                           request->limit() == 0 ? 1000 : request->limit());
  if (!records.ok()) return Reply(call, records.status());
  for (const storage::AuditRecord& record : *records) {
    v1::AuditEntry* entry = response->add_records();
    entry->set_seq(record.seq());
    *entry->mutable_at() = MicrosToTimestamp(record.at_us());
    entry->set_principal(record.principal());
    entry->set_on_behalf_of(record.on_behalf_of());
    entry->set_action(record.action());
    entry->set_referral_id(record.referral_id());
    entry->set_result(record.result());
    entry->set_previous_hash(BytesToHex(record.previous_hash()));
    entry->set_hash(BytesToHex(record.hash()));
  }
  // Reading the trail is itself recorded.
  return ReplyAudited(call, context_.store, *caller, "audit_export", "",
                      absl::OkStatus());
}

grpc::ServerUnaryReactor* OperationsService::VerifyAudit(
    grpc::CallbackServerContext* call, const v1::VerifyAuditRequest* request,
    v1::VerifyAuditResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kVerifyAudit);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::StatusOr<storage::AuditVerification> verified =
      storage::VerifyAudit(*context_.store);
  if (!verified.ok()) return Reply(call, verified.status());
  response->set_records_checked(verified->records_checked);
  response->set_intact(verified->intact);
  response->set_first_bad_seq(verified->first_bad_seq);
  response->set_problem(verified->problem);
  return Reply(call, absl::OkStatus());
}

grpc::ServerUnaryReactor* OperationsService::ReloadConfig(
    grpc::CallbackServerContext* call, const v1::ReloadConfigRequest* request,
    v1::ReloadConfigResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kReloadConfig);
  if (!caller.ok()) return Reply(call, caller.status());
  return Reply(call, context_.reload_rules());
}

namespace {

v1::Backup ToBackupProto(const storage::BackupInfo& info) {
  v1::Backup backup;
  backup.set_backup_id(info.backup_id);
  *backup.mutable_created_at() = ToTimestamp(info.created_at);
  backup.set_size_bytes(info.size_bytes);
  backup.set_file_count(info.file_count);
  return backup;
}

absl::Status CheckBackupsConfigured(const ServiceContext& context) {
  if (context.backup_dir.empty()) {
    return absl::FailedPreconditionError(
        "backups are off: start the broker with --backup_dir");
  }
  return absl::OkStatus();
}

storage::BackupLocation BackupLocationOf(const ServiceContext& context) {
  return {.backup_dir = context.backup_dir,
          .encryption_key_file = context.encryption_key_file};
}

}  // namespace

grpc::ServerUnaryReactor* OperationsService::CreateBackup(
    grpc::CallbackServerContext* call, const v1::CreateBackupRequest* request,
    v1::CreateBackupResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kCreateBackup);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::Status configured = CheckBackupsConfigured(context_);
  if (!configured.ok()) return Reply(call, configured);
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  context_.store->CreateBackup(
      context_.backup_dir,
      FinishWhenCommitted<storage::BackupInfo>(
          reactor, [response](const storage::BackupInfo& info) {
            *response->mutable_backup() = ToBackupProto(info);
          }));
  return reactor;
}

grpc::ServerUnaryReactor* OperationsService::ListBackups(
    grpc::CallbackServerContext* call, const v1::ListBackupsRequest* request,
    v1::ListBackupsResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kListBackups);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::Status configured = CheckBackupsConfigured(context_);
  if (!configured.ok()) return Reply(call, configured);
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  context_.background->Run(
      [reactor, response, location = BackupLocationOf(context_)] {
        absl::StatusOr<std::vector<storage::BackupInfo>> backups =
            storage::ListBackups(location);
        if (backups.ok()) {
          for (const storage::BackupInfo& info : *backups) {
            *response->add_backups() = ToBackupProto(info);
          }
        }
        reactor->Finish(ToGrpcStatus(backups.status()));
      });
  return reactor;
}

grpc::ServerUnaryReactor* OperationsService::VerifyBackup(
    grpc::CallbackServerContext* call, const v1::VerifyBackupRequest* request,
    v1::VerifyBackupResponse* response) {
  absl::StatusOr<Caller> caller =
      context_.authorizer->Authorize(*call, BrokerMethod::kVerifyBackup);
  if (!caller.ok()) return Reply(call, caller.status());
  absl::Status configured = CheckBackupsConfigured(context_);
  if (!configured.ok()) return Reply(call, configured);
  if (request->backup_id() == 0) {
    return Reply(call, absl::InvalidArgumentError(
                           "backup_id: required (see ListBackups)"));
  }
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  context_.background->Run([reactor, response, id = request->backup_id(),
                            location = BackupLocationOf(context_)] {
    absl::StatusOr<storage::BackupInfo> verified =
        storage::VerifyBackup(location, id);
    if (verified.ok()) *response->mutable_backup() = ToBackupProto(*verified);
    reactor->Finish(ToGrpcStatus(verified.status()));
  });
  return reactor;
}

}  // namespace referral::server
