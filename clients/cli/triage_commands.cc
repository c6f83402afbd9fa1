// referral_cli's commands for front-door triage: look at a queue, claim
// referrals, extend or release a claim, record the decision, watch a queue
// and read its notices.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli_command_kit.h"
#include "decision_names.h"

namespace referral::clients {
namespace {

namespace v1 = ::referral::v1;

using Args = std::vector<std::string>;

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

int RunList(const CliEnv& env, const Args& args) {
  const auto request = QueuePage<v1::ListQueueRequest>(env, args);
  return Report(env, "list", Client(env).ListQueue(request, Unary(env)),
                [&](const v1::ListQueueResponse& r) {
                  PrintPage(env, r.entries(), QueueEntryLine, "entries",
                            r.next_page_token(),
                            absl::StrCat(" ready=", r.ready_count()));
                });
}

int RunClaim(const CliEnv& env, const Args& args) {
  v1::ClaimReferralsRequest request;
  request.set_queue(args[0]);
  request.set_max(env.options.max);
  request.set_lease_seconds(env.options.lease_seconds);
  request.set_worker(WorkerName(env.options));
  const absl::StatusOr<v1::ClaimReferralsResponse> response =
      Client(env).ClaimReferrals(request, Unary(env));
  const int code = Report(env, "claim", response, [&](const auto& r) {
    PrintLines(env, r.claims(), ClaimLine);
  });
  if (response.ok() && response->claims().empty()) {
    // Not an error: an empty queue is good news. Said on stderr so that
    // stdout stays one line per claimed referral.
    *env.err << kProgram << " claim: nothing ready in queue " << args[0]
             << "\n";
  }
  return code;
}

int RunExtend(const CliEnv& env, const Args& args) {
  if (env.options.lease_seconds <= 0) {
    return UsageError(env, "extend", "--lease_seconds must be at least 1");
  }
  auto request = Leased<v1::ExtendClaimRequest>(env, args);
  request.set_lease_seconds(env.options.lease_seconds);
  return ReportLine(env, "extend", Client(env).ExtendClaim(request, Unary(env)),
                    [&](const auto& r) { return ExtendLine(args[0], r); });
}

int RunRelease(const CliEnv& env, const Args& args) {
  auto request = Leased<v1::ReleaseReferralRequest>(env, args);
  request.set_reason(env.options.reason);
  return ReportLine(env, "release",
                    Client(env).ReleaseReferral(request, Unary(env)),
                    [&](const auto& r) { return ReleaseLine(args[0], r); });
}

int RunDecide(const CliEnv& env, const Args& args) {
  absl::StatusOr<v1::Decision> decision = ParseDecision(env.options.decision);
  if (!decision.ok()) {
    return UsageError(env, "decide", decision.status().message());
  }
  auto request = Leased<v1::RecordDecisionRequest>(env, args);
  request.set_decision(*decision);
  request.set_rationale(env.options.rationale);
  request.set_feedback(env.options.feedback);
  return ReportLine(
      env, "decide", Client(env).RecordDecision(request, Unary(env)),
      [&](const auto& r) { return DecideLine(args[0], *decision, r); });
}

int RunWatch(const CliEnv& env, const Args& args) {
  v1::WatchQueueRequest request;
  request.set_queue(args[0]);
  CallOptions call;
  call.timeout = absl::InfiniteDuration();  // a watch runs until interrupted
  call.canceller = env.canceller;
  const absl::Status status = Client(env).WatchQueue(
      request, call,
      [&] {
        // From here on no event on the queue is missed. Say so, for people
        // and scripts.
        *env.err << "watching " << args[0] << std::endl;
      },
      [&](const v1::QueueEvent& event) {
        *env.out << (env.options.json ? ToJson(event) : EventLine(event))
                 << std::endl;  // flush: someone is watching
      });
  const bool interrupted =
      env.canceller != nullptr && env.canceller->requested();
  if (interrupted && absl::IsCancelled(status)) return kExitOk;
  if (!status.ok()) return RpcError(env, "watch", status);
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

int RunNotices(const CliEnv& env, const Args& args) {
  const auto request = QueuePage<v1::ListNoticesRequest>(env, args);
  return Report(env, "notices", Client(env).ListNotices(request, Unary(env)),
                [&](const v1::ListNoticesResponse& r) {
                  PrintPage(env, r.notices(), NoticeLine, "notices",
                            r.next_page_token());
                });
}

}  // namespace

const std::vector<CommandSpec>& TriageCommands() {
  static const auto* const kCommands = new std::vector<CommandSpec>{
      CommandSpec("list", "triage", "QUEUE",
                  "what waits in a queue, without claiming",
                  {"page_size", "page_token"}, {}, 1, 1, RunList),
      CommandSpec("claim", "triage", "QUEUE",
                  "lease referrals in delivery order (prints ids, lease "
                  "tokens, attempts)",
                  {"max", "lease_seconds", "worker"}, {}, 1, 1, RunClaim),
      CommandSpec("extend", "triage", "REFERRAL_ID", "extend a claim's lease",
                  {"token", "lease_seconds"}, {"token", "lease_seconds"}, 1, 1,
                  RunExtend),
      CommandSpec("release", "triage", "REFERRAL_ID",
                  "return a claimed referral to its queue (counts as a failed "
                  "delivery)",
                  {"token", "reason"}, {"token", "reason"}, 1, 1, RunRelease),
      CommandSpec("decide", "triage", "REFERRAL_ID",
                  "record the front door's decision (e.g. early-help, "
                  "no-further-action, strategy-discussion)",
                  {"token", "decision", "rationale", "feedback"},
                  {"token", "decision", "rationale"}, 1, 1, RunDecide),
      CommandSpec("watch", "triage", "QUEUE",
                  "print queue events as they happen, until interrupted", {},
                  {}, 1, 1, RunWatch),
      CommandSpec("notices", "triage", "QUEUE",
                  "referrals the queue was notified of (e.g. "
                  "edt-out-of-hours), newest first, with their state and work "
                  "queue",
                  {"page_size", "page_token"}, {}, 1, 1, RunNotices),
  };
  return *kCommands;
}

}  // namespace referral::clients
