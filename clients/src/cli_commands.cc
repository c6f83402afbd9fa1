#include "cli_commands.h"

#include <grpcpp/support/sync_stream.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "broker_channel.h"
#include "cli_format.h"
#include "decision_names.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "referral/v1/broker.grpc.pb.h"
#include "referral/v1/broker.pb.h"
#include "referral_json.h"
#include "stats_table.h"

namespace referral::clients {
namespace {

namespace v1 = ::referral::v1;

constexpr absl::string_view kProgram = "referral_cli";

// Every failure message names the command, so a script's log says which
// step failed.
int UsageError(const CliEnv& env, absl::string_view command,
               absl::string_view message) {
  *env.err << kProgram << " " << command << ": " << message << "\n";
  return kExitUsage;
}

int RpcError(const CliEnv& env, absl::string_view command,
             const grpc::Status& status) {
  *env.err << kProgram << " " << command << ": "
           << StatusCodeName(status.error_code()) << ": "
           << status.error_message() << "\n";
  return kExitRpcError;
}

void PrepareUnary(const CliEnv& env, grpc::ClientContext* context) {
  SetTimeout(context, env.options.timeout);
}

template <typename Message>
void PrintJson(const CliEnv& env, const Message& message) {
  *env.out << ToJson(message) << "\n";
}

std::string PageLine(absl::string_view what, int count,
                     absl::string_view next_page_token) {
  return absl::StrCat("page ", what, "=", count,
                      " next_page_token=", QuoteValue(next_page_token));
}

// The triage worker name: the flag, else the login name when it fits the
// broker's rule ([A-Za-z0-9._@-], 1..128 bytes), else a fixed name.
std::string WorkerName(const CliOptions& options) {
  if (!options.worker.empty()) return options.worker;
  const char* user = std::getenv("USER");
  std::string name = user != nullptr ? user : "";
  const bool valid = !name.empty() && name.size() <= 128 &&
                     std::all_of(name.begin(), name.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') ||
                              (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                              c == '@' || c == '-';
                     });
  return valid ? name : "referral-cli";
}

// --- agencies --------------------------------------------------------------

int RunSubmit(const CliEnv& env, const std::vector<std::string>& args) {
  absl::StatusOr<v1::Referral> referral = LoadReferralJson(args[0]);
  if (!referral.ok()) {
    return UsageError(env, "submit", referral.status().message());
  }
  v1::SubmitReferralRequest request;
  *request.mutable_referral() = *std::move(referral);
  if (!env.options.agency.empty()) {
    request.mutable_referral()->mutable_referrer()->set_agency_id(
        env.options.agency);
  }
  const bool generated = env.options.idempotency_key.empty();
  const std::string key =
      generated ? NewIdempotencyKey() : env.options.idempotency_key;
  request.set_idempotency_key(key);
  if (generated) {
    // On stderr so that --json output stays a single JSON document.
    *env.err << kProgram << " submit: no --idempotency_key given; using " << key
             << "\n";
  }

  auto stub = v1::ReferralIntake::NewStub(env.channel);
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::SubmitReferralResponse response;
  const grpc::Status status =
      stub->SubmitReferral(&context, request, &response);
  if (!status.ok()) {
    const int code = RpcError(env, "submit", status);
    // After a timeout or a lost connection the referral may or may not be
    // stored: resubmitting with the same key is safe either way.
    *env.err << kProgram << " submit: to retry safely, resubmit with "
             << "--idempotency_key=" << key << "\n";
    return code;
  }
  if (env.options.json) {
    PrintJson(env, response);
  } else {
    *env.out << SubmitLine(response, key) << "\n";
  }
  return kExitOk;
}

int RunStatus(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = v1::ReferralIntake::NewStub(env.channel);
  v1::GetReferralStatusRequest request;
  request.set_referral_id(args[0]);
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::GetReferralStatusResponse response;
  const grpc::Status status =
      stub->GetReferralStatus(&context, request, &response);
  if (!status.ok()) return RpcError(env, "status", status);
  if (env.options.json) {
    PrintJson(env, response);
  } else {
    *env.out << StatusLines(response) << "\n";
  }
  return kExitOk;
}

int RunOutcomes(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = v1::ReferralIntake::NewStub(env.channel);
  v1::ListOutcomesRequest request;
  request.set_agency(env.options.agency);
  request.set_page_size(env.options.page_size);
  request.set_page_token(env.options.page_token);
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::ListOutcomesResponse response;
  const grpc::Status status = stub->ListOutcomes(&context, request, &response);
  if (!status.ok()) return RpcError(env, "outcomes", status);
  if (env.options.json) {
    PrintJson(env, response);
    return kExitOk;
  }
  for (const v1::Outcome& outcome : response.outcomes()) {
    *env.out << OutcomeLine(outcome) << "\n";
  }
  *env.out << PageLine("outcomes", response.outcomes_size(),
                       response.next_page_token())
           << "\n";
  return kExitOk;
}

int RunAck(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = v1::ReferralIntake::NewStub(env.channel);
  v1::AcknowledgeOutcomeRequest request;
  request.set_referral_id(args[0]);
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::AcknowledgeOutcomeResponse response;
  const grpc::Status status =
      stub->AcknowledgeOutcome(&context, request, &response);
  if (!status.ok()) return RpcError(env, "ack", status);
  if (env.options.json) {
    PrintJson(env, response);
  } else {
    *env.out << AckLine(args[0], response) << "\n";
  }
  return kExitOk;
}

// --- triage ----------------------------------------------------------------

int RunList(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = v1::Triage::NewStub(env.channel);
  v1::ListQueueRequest request;
  request.set_queue(args[0]);
  request.mutable_page()->set_page_size(env.options.page_size);
  request.mutable_page()->set_page_token(env.options.page_token);
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::ListQueueResponse response;
  const grpc::Status status = stub->ListQueue(&context, request, &response);
  if (!status.ok()) return RpcError(env, "list", status);
  if (env.options.json) {
    PrintJson(env, response);
    return kExitOk;
  }
  for (const v1::QueueEntry& entry : response.entries()) {
    *env.out << QueueEntryLine(entry) << "\n";
  }
  *env.out << PageLine("entries", response.entries_size(),
                       response.next_page_token())
           << " ready=" << response.ready_count() << "\n";
  return kExitOk;
}

int RunClaim(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = v1::Triage::NewStub(env.channel);
  v1::ClaimReferralsRequest request;
  request.set_queue(args[0]);
  request.set_max(env.options.max);
  request.set_lease_seconds(env.options.lease_seconds);
  request.set_worker(WorkerName(env.options));
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::ClaimReferralsResponse response;
  const grpc::Status status =
      stub->ClaimReferrals(&context, request, &response);
  if (!status.ok()) return RpcError(env, "claim", status);
  if (env.options.json) {
    PrintJson(env, response);
  } else {
    for (const v1::ClaimedReferral& claim : response.claims()) {
      *env.out << ClaimLine(claim) << "\n";
    }
  }
  if (response.claims().empty()) {
    // Not an error: an empty queue is good news. Said on stderr so that
    // stdout stays one line per claimed referral.
    *env.err << kProgram << " claim: nothing ready in queue " << args[0]
             << "\n";
  }
  return kExitOk;
}

int RunExtend(const CliEnv& env, const std::vector<std::string>& args) {
  if (env.options.lease_seconds <= 0) {
    return UsageError(env, "extend", "--lease_seconds must be at least 1");
  }
  auto stub = v1::Triage::NewStub(env.channel);
  v1::ExtendClaimRequest request;
  request.set_referral_id(args[0]);
  request.set_lease_token(env.options.token);
  request.set_lease_seconds(env.options.lease_seconds);
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::ExtendClaimResponse response;
  const grpc::Status status = stub->ExtendClaim(&context, request, &response);
  if (!status.ok()) return RpcError(env, "extend", status);
  if (env.options.json) {
    PrintJson(env, response);
  } else {
    *env.out << ExtendLine(args[0], response) << "\n";
  }
  return kExitOk;
}

int RunRelease(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = v1::Triage::NewStub(env.channel);
  v1::ReleaseReferralRequest request;
  request.set_referral_id(args[0]);
  request.set_lease_token(env.options.token);
  request.set_reason(env.options.reason);
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::ReleaseReferralResponse response;
  const grpc::Status status =
      stub->ReleaseReferral(&context, request, &response);
  if (!status.ok()) return RpcError(env, "release", status);
  if (env.options.json) {
    PrintJson(env, response);
  } else {
    *env.out << ReleaseLine(args[0], response) << "\n";
  }
  return kExitOk;
}

int RunDecide(const CliEnv& env, const std::vector<std::string>& args) {
  absl::StatusOr<v1::Decision> decision = ParseDecision(env.options.decision);
  if (!decision.ok()) {
    return UsageError(env, "decide", decision.status().message());
  }
  auto stub = v1::Triage::NewStub(env.channel);
  v1::RecordDecisionRequest request;
  request.set_referral_id(args[0]);
  request.set_lease_token(env.options.token);
  request.set_decision(*decision);
  request.set_rationale(env.options.rationale);
  request.set_feedback(env.options.feedback);
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::RecordDecisionResponse response;
  const grpc::Status status =
      stub->RecordDecision(&context, request, &response);
  if (!status.ok()) return RpcError(env, "decide", status);
  if (env.options.json) {
    PrintJson(env, response);
  } else {
    *env.out << DecideLine(args[0], *decision, response) << "\n";
  }
  return kExitOk;
}

// "notice <id> state=<state> queue=<work queue> priority=..." : the queue
// entry's fields after the state and the work queue holding the referral.
std::string NoticeLine(const v1::Notice& notice) {
  std::string entry = QueueEntryLine(notice.entry());
  // QueueEntryLine starts "entry <id>"; keep what follows the id.
  const std::string lead = absl::StrCat("entry ", notice.entry().referral_id());
  const std::string rest =
      entry.compare(0, lead.size(), lead) == 0 ? entry.substr(lead.size()) : "";
  return absl::StrCat("notice ", notice.entry().referral_id(),
                      " state=", ShortName(notice.state()),
                      " queue=", QuoteValue(notice.queue()), rest);
}

int RunNotices(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = v1::Triage::NewStub(env.channel);
  v1::ListNoticesRequest request;
  request.set_queue(args[0]);
  request.mutable_page()->set_page_size(env.options.page_size);
  request.mutable_page()->set_page_token(env.options.page_token);
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::ListNoticesResponse response;
  const grpc::Status status = stub->ListNotices(&context, request, &response);
  if (!status.ok()) return RpcError(env, "notices", status);
  if (env.options.json) {
    PrintJson(env, response);
    return kExitOk;
  }
  for (const v1::Notice& notice : response.notices()) {
    *env.out << NoticeLine(notice) << "\n";
  }
  *env.out << PageLine("notices", response.notices_size(),
                       response.next_page_token())
           << "\n";
  return kExitOk;
}

int RunWatch(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = v1::Triage::NewStub(env.channel);
  v1::WatchQueueRequest request;
  request.set_queue(args[0]);
  // No deadline: a watch runs until interrupted.
  grpc::ClientContext context;
  if (env.canceller != nullptr) env.canceller->Bind(&context);
  std::unique_ptr<grpc::ClientReader<v1::QueueEvent>> reader =
      stub->WatchQueue(&context, request);
  // The broker sends headers once the stream is registered: from here on
  // no event on the queue is missed. Say so, for people and scripts.
  reader->WaitForInitialMetadata();
  *env.err << "watching " << args[0] << std::endl;
  v1::QueueEvent event;
  while (reader->Read(&event)) {
    *env.out << (env.options.json ? ToJson(event) : EventLine(event))
             << std::endl;  // flush: someone is watching
  }
  const grpc::Status status = reader->Finish();
  const bool interrupted =
      env.canceller != nullptr && env.canceller->requested();
  if (env.canceller != nullptr) env.canceller->Unbind();
  if (interrupted && status.error_code() == grpc::StatusCode::CANCELLED) {
    return kExitOk;
  }
  if (!status.ok()) return RpcError(env, "watch", status);
  return kExitOk;
}

// --- ops -------------------------------------------------------------------

constexpr absl::string_view kClearScreen = "\x1b[H\x1b[2J";

// What precedes each table of `stats --watch`: on a terminal the screen is
// cleared and the table redrawn in place; in a pipe or file each refresh is
// set off by a separator line, with no control codes. Both carry the time
// of the figures.
std::string RefreshHeading(const CliEnv& env, int refresh, absl::Time at) {
  const std::string when =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", at, absl::UTCTimeZone());
  if (env.out_is_terminal) {
    return absl::StrCat(kClearScreen, "referral broker stats at ", when,
                        " (every ",
                        absl::FormatDuration(env.options.watch_interval),
                        "; Ctrl-C to stop)\n\n");
  }
  return absl::StrCat(refresh > 0 ? "\n" : "", "--- stats at ", when, " ---\n");
}

absl::Time FiguresTime(const v1::GetQueueStatsResponse& response) {
  if (!response.has_at()) return absl::Now();
  return absl::FromUnixSeconds(response.at().seconds()) +
         absl::Nanoseconds(response.at().nanos());
}

void PrintStats(const CliEnv& env, const v1::GetQueueStatsResponse& response) {
  if (env.options.json) {
    PrintJson(env, response);
  } else {
    *env.out << FormatStatsTable(response);
  }
}

// See the header for how a watch treats failed refreshes and interruption.
int WatchStats(const CliEnv& env, v1::Operations::Stub* stub) {
  CallCanceller never_cancelled;
  CallCanceller* const canceller =
      env.canceller != nullptr ? env.canceller : &never_cancelled;
  canceller->Attend();
  int code = kExitOk;
  for (int refresh = 0;
       env.options.watch_count == 0 || refresh < env.options.watch_count;
       ++refresh) {
    if (refresh > 0 && canceller->WaitForCancel(env.options.watch_interval)) {
      break;
    }
    if (canceller->requested()) break;
    grpc::ClientContext context;
    PrepareUnary(env, &context);
    canceller->Bind(&context);
    v1::GetQueueStatsResponse response;
    const grpc::Status status =
        stub->GetQueueStats(&context, v1::GetQueueStatsRequest(), &response);
    canceller->Unbind();
    if (status.error_code() == grpc::StatusCode::CANCELLED &&
        canceller->requested()) {
      break;  // interrupted: not a failure of the broker
    }
    if (!status.ok()) {
      // JSON Lines stay responses only; people get the heading so that a
      // stale table does not stay on screen looking current.
      if (!env.options.json) {
        *env.out << RefreshHeading(env, refresh, absl::Now());
      }
      env.out->flush();
      RpcError(env, "stats", status);
      code = kExitRpcError;
      continue;
    }
    code = kExitOk;
    if (!env.options.json) {
      *env.out << RefreshHeading(env, refresh, FiguresTime(response));
    }
    PrintStats(env, response);
    env.out->flush();  // someone is watching
  }
  canceller->Leave();
  return code;
}

int RunStats(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = v1::Operations::NewStub(env.channel);
  if (env.options.watch) {
    if (env.options.watch_interval <= absl::ZeroDuration()) {
      return UsageError(env, "stats", "--watch_seconds must be at least 1");
    }
    if (env.options.watch_count < 0) {
      return UsageError(env, "stats", "--watch_count must not be negative");
    }
    return WatchStats(env, stub.get());
  }
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::GetQueueStatsResponse response;
  const grpc::Status status =
      stub->GetQueueStats(&context, v1::GetQueueStatsRequest(), &response);
  if (!status.ok()) return RpcError(env, "stats", status);
  PrintStats(env, response);
  return kExitOk;
}

int RunHealth(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = grpc::health::v1::Health::NewStub(env.channel);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(env.options.service);
  grpc::ClientContext context;
  SetTimeout(&context,
             env.options.timeout_given ? env.options.timeout : kHealthTimeout);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  // Unreachable, timed out, or an unknown service (NOT_FOUND): all
  // unhealthy to a probe.
  if (!status.ok()) return RpcError(env, "health", status);
  if (env.options.json) {
    PrintJson(env, response);
  } else {
    *env.out << "health "
             << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                    response.status())
             << " service=" << QuoteValue(env.options.service) << "\n";
  }
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING
             ? kExitOk
             : kExitRpcError;
}

// Backups copy and re-read the whole store: allow far longer than the
// usual per-call deadline unless --timeout says otherwise.
constexpr absl::Duration kBackupTimeout = absl::Minutes(10);

int RunBackup(const CliEnv& env, const std::vector<std::string>& args) {
  const std::string& action = args[0];
  if (action != "create" && action != "list" && action != "verify") {
    return UsageError(
        env, "backup",
        absl::StrCat("unknown action ", QuoteValue(action),
                     " (expects create, list or verify)\n",
                     CommandUsage(kProgram, *FindCommand("backup"))));
  }
  const std::string command = absl::StrCat("backup ", action);
  if (action == "verify" && env.options.backup_id == 0) {
    return UsageError(env, command,
                      "--backup_id is required (backup list shows the ids)");
  }
  if (action != "verify" && env.options.backup_id != 0) {
    return UsageError(env, command,
                      "--backup_id applies to backup verify only");
  }
  auto stub = v1::Operations::NewStub(env.channel);
  grpc::ClientContext context;
  SetTimeout(&context,
             env.options.timeout_given ? env.options.timeout : kBackupTimeout);

  if (action == "create") {
    v1::CreateBackupResponse response;
    const grpc::Status status =
        stub->CreateBackup(&context, v1::CreateBackupRequest(), &response);
    if (!status.ok()) return RpcError(env, command, status);
    if (env.options.json) {
      PrintJson(env, response);
    } else {
      *env.out << BackupLine(response.backup()) << "\n";
    }
    return kExitOk;
  }

  if (action == "list") {
    v1::ListBackupsResponse response;
    const grpc::Status status =
        stub->ListBackups(&context, v1::ListBackupsRequest(), &response);
    if (!status.ok()) return RpcError(env, command, status);
    if (env.options.json) {
      PrintJson(env, response);
      return kExitOk;
    }
    for (const v1::Backup& backup : response.backups()) {
      *env.out << BackupLine(backup) << "\n";
    }
    if (response.backups().empty()) {
      // Not an error; on stderr so that stdout stays one line per backup.
      *env.err << kProgram << " backup list: no backups yet\n";
    }
    return kExitOk;
  }

  v1::VerifyBackupRequest request;
  request.set_backup_id(env.options.backup_id);
  v1::VerifyBackupResponse response;
  const grpc::Status status = stub->VerifyBackup(&context, request, &response);
  // DATA_LOSS (a damaged file, named by the broker) or NOT_FOUND.
  if (!status.ok()) return RpcError(env, command, status);
  if (env.options.json) {
    PrintJson(env, response);
  } else {
    *env.out << VerifiedBackupLine(response.backup()) << "\n";
  }
  return kExitOk;
}

int RunDeadLetters(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = v1::Operations::NewStub(env.channel);
  v1::ListDeadLettersRequest request;
  request.set_queue(args[0]);
  request.mutable_page()->set_page_size(env.options.page_size);
  request.mutable_page()->set_page_token(env.options.page_token);
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::ListDeadLettersResponse response;
  const grpc::Status status =
      stub->ListDeadLetters(&context, request, &response);
  if (!status.ok()) return RpcError(env, "dead-letters", status);
  if (env.options.json) {
    PrintJson(env, response);
    return kExitOk;
  }
  for (const v1::DeadLetter& dead_letter : response.dead_letters()) {
    *env.out << DeadLetterLine(dead_letter) << "\n";
  }
  *env.out << PageLine("dead_letters", response.dead_letters_size(),
                       response.next_page_token())
           << "\n";
  return kExitOk;
}

int RunAuditExport(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = v1::Operations::NewStub(env.channel);
  v1::ExportAuditRequest request;
  const int64_t from = absl::ToUnixSeconds(absl::Now() - env.options.since);
  request.mutable_from()->set_seconds(from);
  request.set_limit(env.options.limit);
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::ExportAuditResponse response;
  const grpc::Status status = stub->ExportAudit(&context, request, &response);
  if (!status.ok()) return RpcError(env, "audit-export", status);
  if (env.options.json) {
    PrintJson(env, response);
    return kExitOk;
  }
  for (const v1::AuditEntry& entry : response.records()) {
    *env.out << "audit " << entry.seq() << " at="
             << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                                 absl::FromUnixSeconds(entry.at().seconds()),
                                 absl::UTCTimeZone())
             << " principal=" << entry.principal() << " on_behalf_of="
             << (entry.on_behalf_of().empty()
                     ? "-"
                     : "\"" + entry.on_behalf_of() + "\"")
             << " action=" << entry.action() << " referral="
             << (entry.referral_id().empty() ? "-" : entry.referral_id())
             << " result=" << entry.result() << "\n";
  }
  return kExitOk;
}

int RunAuditVerify(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = v1::Operations::NewStub(env.channel);
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::VerifyAuditResponse response;
  const grpc::Status status =
      stub->VerifyAudit(&context, v1::VerifyAuditRequest(), &response);
  if (!status.ok()) return RpcError(env, "audit-verify", status);
  if (env.options.json) {
    PrintJson(env, response);
  } else {
    *env.out << "audit " << (response.intact() ? "intact" : "BROKEN")
             << " records=" << response.records_checked();
    if (!response.intact()) {
      *env.out << " first_bad_seq=" << response.first_bad_seq() << " problem=\""
               << response.problem() << "\"";
    }
    *env.out << "\n";
  }
  // A broken chain is an incident: scripts must notice.
  return response.intact() ? kExitOk : kExitRpcError;
}

int RunRequeue(const CliEnv& env, const std::vector<std::string>& args) {
  auto stub = v1::Operations::NewStub(env.channel);
  v1::RequeueDeadLetterRequest request;
  request.set_referral_id(args[0]);
  grpc::ClientContext context;
  PrepareUnary(env, &context);
  v1::RequeueDeadLetterResponse response;
  const grpc::Status status =
      stub->RequeueDeadLetter(&context, request, &response);
  if (!status.ok()) return RpcError(env, "requeue", status);
  if (env.options.json) {
    PrintJson(env, response);
  } else {
    *env.out << RequeueLine(args[0], response) << "\n";
  }
  return kExitOk;
}

std::string FlagUsage(absl::string_view flag, bool required) {
  static const auto* const kForms =
      new std::vector<std::pair<absl::string_view, absl::string_view>>{
          {"idempotency_key", "--idempotency_key=KEY"},
          {"agency", "--agency=ID"},
          {"page_size", "--page_size=N"},
          {"page_token", "--page_token=T"},
          {"max", "--max=N"},
          {"lease_seconds", "--lease_seconds=N"},
          {"worker", "--worker=NAME"},
          {"token", "--token=T"},
          {"reason", "--reason=TEXT"},
          {"decision", "--decision=NAME"},
          {"rationale", "--rationale=TEXT"},
          {"feedback", "--feedback=TEXT"},
          {"since", "--since=DURATION"},
          {"limit", "--limit=N"},
          {"watch_seconds", "--watch_seconds=N"},
          {"watch_count", "--watch_count=N"},
          {"backup_id", "--backup_id=N"},
          {"service", "--service=NAME"},
      };
  std::string form = absl::StrCat("--", flag);
  for (const auto& [name, usage] : *kForms) {
    if (name == flag) form = std::string(usage);
  }
  return required ? form : absl::StrCat("[", form, "]");
}

}  // namespace

void CallCanceller::Bind(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  context_ = context;
  if (requested_) context_->TryCancel();
}

void CallCanceller::Unbind() {
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
}

void CallCanceller::Attend() {
  absl::MutexLock lock(&mu_);
  attended_ = true;
}

void CallCanceller::Leave() {
  absl::MutexLock lock(&mu_);
  attended_ = false;
}

bool CallCanceller::Cancel() {
  absl::MutexLock lock(&mu_);
  requested_ = true;
  if (context_ != nullptr) context_->TryCancel();
  return context_ != nullptr || attended_;
}

bool CallCanceller::requested() const {
  absl::MutexLock lock(&mu_);
  return requested_;
}

bool CallCanceller::WaitForCancel(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&requested_), timeout);
}

const std::vector<CommandSpec>& Commands() {
  static const auto* const kCommands = new std::vector<CommandSpec>{
      {"submit",
       "agencies",
       "FILE|-",
       "submit a referral written as protobuf JSON (referral.v1.Referral); "
       "'-' reads stdin",
       {"idempotency_key", "agency"},
       {},
       1,
       1,
       RunSubmit},
      {"status",
       "agencies",
       "REFERRAL_ID",
       "state, history and stage times of a referral",
       {},
       {},
       1,
       1,
       RunStatus},
      {"outcomes",
       "agencies",
       "",
       "decisions on the agency's referrals not yet acknowledged",
       {"agency", "page_size", "page_token"},
       {"agency"},
       0,
       0,
       RunOutcomes},
      {"ack",
       "agencies",
       "REFERRAL_ID",
       "acknowledge that the referrer has received the outcome",
       {},
       {},
       1,
       1,
       RunAck},
      {"list",
       "triage",
       "QUEUE",
       "what waits in a queue, without claiming",
       {"page_size", "page_token"},
       {},
       1,
       1,
       RunList},
      {"claim",
       "triage",
       "QUEUE",
       "lease referrals in delivery order (prints ids, lease tokens, "
       "attempts)",
       {"max", "lease_seconds", "worker"},
       {},
       1,
       1,
       RunClaim},
      {"extend",
       "triage",
       "REFERRAL_ID",
       "extend a claim's lease",
       {"token", "lease_seconds"},
       {"token", "lease_seconds"},
       1,
       1,
       RunExtend},
      {"release",
       "triage",
       "REFERRAL_ID",
       "return a claimed referral to its queue (counts as a failed "
       "delivery)",
       {"token", "reason"},
       {"token", "reason"},
       1,
       1,
       RunRelease},
      {"decide",
       "triage",
       "REFERRAL_ID",
       "record the front door's decision (e.g. early-help, "
       "no-further-action, strategy-discussion)",
       {"token", "decision", "rationale", "feedback"},
       {"token", "decision", "rationale"},
       1,
       1,
       RunDecide},
      {"watch",
       "triage",
       "QUEUE",
       "print queue events as they happen, until interrupted",
       {},
       {},
       1,
       1,
       RunWatch},
      {"notices",
       "triage",
       "QUEUE",
       "referrals the queue was notified of (e.g. edt-out-of-hours), newest "
       "first, with their state and work queue",
       {"page_size", "page_token"},
       {},
       1,
       1,
       RunNotices},
      {"stats",
       "ops",
       "",
       "every queue: ready, claimed, dead letters, oldest ready, overdue, "
       "due within the hour; decisions and time-to-decision percentiles, "
       "notices; unacknowledged outcomes per agency. --watch redraws it "
       "every --watch_seconds (2) until Ctrl-C, or --watch_count times",
       {"watch", "watch_seconds", "watch_count"},
       {},
       0,
       0,
       RunStats},
      {"health",
       "ops",
       "",
       "is the broker serving (grpc.health.v1)? Prints SERVING, NOT_SERVING, "
       "...; exits 0 only for SERVING (for container health checks)",
       {"service"},
       {},
       0,
       0,
       RunHealth},
      {"dead-letters",
       "ops",
       "QUEUE",
       "referrals that exhausted deliveries",
       {"page_size", "page_token"},
       {},
       1,
       1,
       RunDeadLetters},
      {"requeue",
       "ops",
       "REFERRAL_ID",
       "put a dead letter back in its queue",
       {},
       {},
       1,
       1,
       RunRequeue},
      {"audit-export",
       "admin",
       "",
       "the audit trail of the last --since (default 24h): who did what to "
       "which referral, with the result",
       {"since", "limit"},
       {},
       0,
       0,
       RunAuditExport},
      {"audit-verify",
       "admin",
       "",
       "recompute the audit hash chain; exits 1 if a record was edited or "
       "deleted",
       {},
       {},
       0,
       0,
       RunAuditVerify},
      {"backup",
       "admin",
       "create|list|verify",
       "online backup of the whole store into the broker's --backup_dir; "
       "list the backups (id, created, size, files); verify re-reads one "
       "backup's files and exits 1 naming a damaged file",
       {"backup_id"},
       {},
       1,
       1,
       RunBackup},
  };
  return *kCommands;
}

const CommandSpec* FindCommand(absl::string_view name) {
  for (const CommandSpec& spec : Commands()) {
    if (spec.name == name) return &spec;
  }
  // Accept "dead_letters" for people who type flags with underscores.
  if (name == "dead_letters") return FindCommand("dead-letters");
  return nullptr;
}

bool IsCommandGroup(absl::string_view word) {
  return word == "agencies" || word == "triage" || word == "ops" ||
         word == "admin";
}

std::string CommandUsage(absl::string_view program, const CommandSpec& spec) {
  std::vector<std::string> parts = {std::string(program), spec.name};
  if (!spec.arguments.empty()) parts.push_back(spec.arguments);
  for (const std::string& flag : spec.flags) {
    const bool required =
        std::find(spec.required_flags.begin(), spec.required_flags.end(),
                  flag) != spec.required_flags.end();
    parts.push_back(FlagUsage(flag, required));
  }
  return absl::StrCat("usage: ", absl::StrJoin(parts, " "));
}

std::string UsageText(absl::string_view program) {
  std::string out = absl::StrCat(
      "usage: ", program,
      " [--server=HOST:PORT] [--json] [--timeout=DURATION] [TLS flags]\n"
      "    COMMAND [ARGS] [FLAGS]\n"
      "\n"
      "Talks to the referral broker (default 127.0.0.1:50051). A command may "
      "be\npreceded by its group name (",
      program, " triage claim ...).\n");
  const std::array<std::pair<absl::string_view, absl::string_view>, 4> groups =
      {{{"agencies", "Partner agencies"},
        {"triage", "Front-door triage"},
        {"ops", "Operations"},
        {"admin", "Administrators"}}};
  for (const auto& [group, title] : groups) {
    absl::StrAppend(&out, "\n", title, ":\n");
    for (const CommandSpec& spec : Commands()) {
      if (spec.group != group) continue;
      std::vector<std::string> parts = {spec.name};
      if (!spec.arguments.empty()) parts.push_back(spec.arguments);
      for (const std::string& flag : spec.flags) {
        const bool required =
            std::find(spec.required_flags.begin(), spec.required_flags.end(),
                      flag) != spec.required_flags.end();
        parts.push_back(FlagUsage(flag, required));
      }
      absl::StrAppend(&out, "  ", absl::StrJoin(parts, " "), "\n      ",
                      spec.summary, "\n");
    }
  }
  absl::StrAppend(
      &out,
      "\nGlobal flags:\n"
      "  --server=HOST:PORT   broker address (default 127.0.0.1:50051)\n"
      "  --json               print responses as protobuf JSON, one per line\n"
      "  --timeout=DURATION   deadline per call, e.g. 10s (default 30s; "
      "health 5s,\n"
      "                       backup 10m)\n"
      "  --on_behalf_of=NAME  staff member the call is made for; sent to the\n"
      "                       broker's audit trail (x-referral-on-behalf-of)\n"
      "\nTLS flags (the broker requires mutual TLS unless run for "
      "development):\n"
      "  --ca=FILE            PEM CA bundle the broker's certificate must "
      "chain\n"
      "                       to; turns TLS on (default: $REFERRAL_CA)\n"
      "  --cert=FILE          PEM client certificate, identified by its URI "
      "SAN\n"
      "                       spiffe://referral-broker/NAME or CN "
      "(default:\n"
      "                       $REFERRAL_CERT)\n"
      "  --key=FILE           PEM private key of --cert (default: "
      "$REFERRAL_KEY)\n"
      "  --tls_server_name=NAME  name the broker's certificate must carry "
      "when\n"
      "                       it is not the --server host\n"
      "  --plaintext          no TLS whatever the variables say: a "
      "development\n"
      "                       broker, or the broker's plaintext health port\n"
      "  A flag given on the command line, even empty, wins over its\n"
      "  environment variable.\n"
      "\nDecisions: ",
      absl::StrJoin(DecisionShortNames(), ", "),
      "\n           (or DECISION_* names; aliases nfa, s17, s47)\n"
      "\nExit status: 0 success; 1 the broker returned an error (its status "
      "code\nis printed), or health is not SERVING, or audit-verify or backup "
      "verify\nfound damage; 2 usage error or invalid input file.\n");
  return out;
}

int RunCommand(const CommandSpec& spec, const CliEnv& env,
               const std::vector<std::string>& args,
               const std::vector<std::string>& given_flags) {
  const int count = static_cast<int>(args.size());
  if (count < spec.min_args || count > spec.max_args) {
    const std::string expected = spec.max_args == 0
                                     ? "takes no arguments"
                                     : absl::StrCat("expects ", spec.arguments);
    return UsageError(
        env, spec.name,
        absl::StrCat(expected, "\n", CommandUsage(kProgram, spec)));
  }
  for (const std::string& flag : spec.required_flags) {
    if (std::find(given_flags.begin(), given_flags.end(), flag) ==
        given_flags.end()) {
      return UsageError(env, spec.name,
                        absl::StrCat("--", flag, " is required\n",
                                     CommandUsage(kProgram, spec)));
    }
  }
  return spec.run(env, args);
}

std::string NewIdempotencyKey() {
  std::random_device device;
  std::array<uint32_t, 4> words;
  for (uint32_t& w : words) w = device();
  // Version 4 (random) and the RFC 4122 variant bits.
  words[1] = (words[1] & 0xFFFF0FFFu) | 0x00004000u;
  words[2] = (words[2] & 0x3FFFFFFFu) | 0x80000000u;
  return absl::StrFormat("%08x-%04x-%04x-%04x-%04x%08x", words[0],
                         words[1] >> 16, words[1] & 0xFFFF, words[2] >> 16,
                         words[2] & 0xFFFF, words[3]);
}

}  // namespace referral::clients
