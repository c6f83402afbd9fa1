// referral_cli's commands for administrators: the audit trail (export and
// verification of its hash chain) and the store's online backups.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/timestamps.h"
#include "cli_command_kit.h"

namespace referral::clients {
namespace {

namespace v1 = ::referral::v1;

using Args = std::vector<std::string>;

// Backups copy and re-read the whole store: allow far longer than the
// usual per-call deadline unless --timeout says otherwise.
constexpr absl::Duration kBackupTimeout = absl::Minutes(10);

std::string AuditLine(const v1::AuditEntry& entry) {
  return absl::StrCat("audit ", entry.seq(),
                      " at=", FormatUtcSeconds(FromTimestamp(entry.at())),
                      " principal=", entry.principal(), " on_behalf_of=",
                      entry.on_behalf_of().empty()
                          ? "-"
                          : absl::StrCat("\"", entry.on_behalf_of(), "\""),
                      " action=", entry.action(), " referral=",
                      entry.referral_id().empty() ? "-" : entry.referral_id(),
                      " result=", entry.result());
}

int RunAuditExport(const CliEnv& env, const Args& args) {
  v1::ExportAuditRequest request;
  const int64_t from = absl::ToUnixSeconds(absl::Now() - env.options.since);
  request.mutable_from()->set_seconds(from);
  request.set_limit(env.options.limit);
  return Report(env, "audit-export",
                Client(env).ExportAudit(request, Unary(env)),
                [&](const v1::ExportAuditResponse& r) {
                  PrintLines(env, r.records(), AuditLine);
                });
}

int RunAuditVerify(const CliEnv& env, const Args& args) {
  const absl::StatusOr<v1::VerifyAuditResponse> response =
      Client(env).VerifyAudit(v1::VerifyAuditRequest(), Unary(env));
  const int code = Report(env, "audit-verify", response, [&](const auto& r) {
    *env.out << "audit " << (r.intact() ? "intact" : "BROKEN")
             << " records=" << r.records_checked();
    if (!r.intact()) {
      *env.out << " first_bad_seq=" << r.first_bad_seq() << " problem=\""
               << r.problem() << "\"";
    }
    *env.out << "\n";
  });
  // A broken chain is an incident: scripts must notice.
  return code == kExitOk && !response->intact() ? kExitRpcError : code;
}

int RunBackup(const CliEnv& env, const Args& args) {
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
  const BrokerClient client = Client(env);
  CallOptions call = Unary(env);
  if (!env.options.timeout_given) call.timeout = kBackupTimeout;

  if (action == "create") {
    return ReportLine(env, command,
                      client.CreateBackup(v1::CreateBackupRequest(), call),
                      [](const auto& r) { return BackupLine(r.backup()); });
  }
  if (action == "list") {
    const absl::StatusOr<v1::ListBackupsResponse> response =
        client.ListBackups(v1::ListBackupsRequest(), call);
    const int code = Report(env, command, response, [&](const auto& r) {
      PrintLines(env, r.backups(), BackupLine);
    });
    if (code == kExitOk && !env.options.json && response->backups().empty()) {
      // Not an error; on stderr so that stdout stays one line per backup.
      *env.err << kProgram << " backup list: no backups yet\n";
    }
    return code;
  }
  v1::VerifyBackupRequest request;
  request.set_backup_id(env.options.backup_id);
  // DATA_LOSS (a damaged file, named by the broker) or NOT_FOUND.
  return ReportLine(
      env, command, client.VerifyBackup(request, call),
      [](const auto& r) { return VerifiedBackupLine(r.backup()); });
}

}  // namespace

const std::vector<CommandSpec>& AdminCommands() {
  static const auto* const kCommands = new std::vector<CommandSpec>{
      CommandSpec("audit-export", "admin", "",
                  "the audit trail of the last --since (default 24h): who did "
                  "what to which referral, with the result",
                  {"since", "limit"}, {}, 0, 0, RunAuditExport),
      CommandSpec("audit-verify", "admin", "",
                  "recompute the audit hash chain; exits 1 if a record was "
                  "edited or deleted",
                  {}, {}, 0, 0, RunAuditVerify),
      CommandSpec("backup", "admin", "create|list|verify",
                  "online backup of the whole store into the broker's "
                  "--backup_dir; list the backups (id, created, size, files); "
                  "verify re-reads one backup's files and exits 1 naming a "
                  "damaged file",
                  {"backup_id"}, {}, 1, 1, RunBackup),
  };
  return *kCommands;
}

}  // namespace referral::clients
