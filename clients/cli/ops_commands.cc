// referral_cli's commands for operations staff: the queue figures (once or
// redrawn until interrupted), the health check, dead letters and their
// requeueing.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/timestamps.h"
#include "cli_command_kit.h"
#include "grpc/health/v1/health.pb.h"
#include "stats_table.h"

namespace referral::clients {
namespace {

namespace v1 = ::referral::v1;

using Args = std::vector<std::string>;

constexpr absl::string_view kClearScreen = "\x1b[H\x1b[2J";

// What precedes each table of `stats --watch`: on a terminal the screen is
// cleared and the table redrawn in place; in a pipe or file each refresh is
// set off by a separator line, with no control codes. Both carry the time
// of the figures.
std::string RefreshHeading(const CliEnv& env, int refresh, absl::Time at) {
  const std::string when = FormatUtcSeconds(at);
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
  return FromTimestamp(response.at());
}

// See cli_commands.h for how a watch treats failed refreshes and
// interruption.
int WatchStats(const CliEnv& env) {
  CallCanceller never_cancelled;
  CallCanceller* const canceller =
      env.canceller != nullptr ? env.canceller : &never_cancelled;
  const BrokerClient client = Client(env);
  CallOptions call = Unary(env);
  call.canceller = canceller;
  canceller->Attend();
  int code = kExitOk;
  for (int refresh = 0;
       env.options.watch_count == 0 || refresh < env.options.watch_count;
       ++refresh) {
    if (refresh > 0 && canceller->WaitForCancel(env.options.watch_interval)) {
      break;
    }
    if (canceller->requested()) break;
    const absl::StatusOr<v1::GetQueueStatsResponse> response =
        client.GetQueueStats(v1::GetQueueStatsRequest(), call);
    if (absl::IsCancelled(response.status()) && canceller->requested()) {
      break;  // interrupted: not a failure of the broker
    }
    // JSON Lines stay responses only; people get the heading even for a
    // failed refresh, so that a stale table does not stay on screen looking
    // current.
    if (!env.options.json) {
      *env.out << RefreshHeading(
          env, refresh, response.ok() ? FiguresTime(*response) : absl::Now());
    }
    if (!response.ok()) env.out->flush();
    code = Report(env, "stats", response,
                  [&](const auto& r) { *env.out << FormatStatsTable(r); });
    env.out->flush();  // someone is watching
  }
  canceller->Leave();
  return code;
}

int RunStats(const CliEnv& env, const Args& args) {
  if (!env.options.watch) {
    return Report(
        env, "stats",
        Client(env).GetQueueStats(v1::GetQueueStatsRequest(), Unary(env)),
        [&](const auto& r) { *env.out << FormatStatsTable(r); });
  }
  if (env.options.watch_interval <= absl::ZeroDuration()) {
    return UsageError(env, "stats", "--watch_seconds must be at least 1");
  }
  if (env.options.watch_count < 0) {
    return UsageError(env, "stats", "--watch_count must not be negative");
  }
  return WatchStats(env);
}

int RunHealth(const CliEnv& env, const Args& args) {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(env.options.service);
  CallOptions call = Unary(env);
  if (!env.options.timeout_given) call.timeout = kHealthTimeout;
  const absl::StatusOr<grpc::health::v1::HealthCheckResponse> response =
      Client(env).CheckHealth(request, call);
  // Unreachable, timed out, or an unknown service (NOT_FOUND): all
  // unhealthy to a probe.
  const int code = Report(env, "health", response, [&](const auto& r) {
    *env.out << "health "
             << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                    r.status())
             << " service=" << QuoteValue(env.options.service) << "\n";
  });
  if (code != kExitOk) return code;
  return response->status() == grpc::health::v1::HealthCheckResponse::SERVING
             ? kExitOk
             : kExitRpcError;
}

int RunDeadLetters(const CliEnv& env, const Args& args) {
  const auto request = QueuePage<v1::ListDeadLettersRequest>(env, args);
  return Report(env, "dead-letters",
                Client(env).ListDeadLetters(request, Unary(env)),
                [&](const v1::ListDeadLettersResponse& r) {
                  PrintPage(env, r.dead_letters(), DeadLetterLine,
                            "dead_letters", r.next_page_token());
                });
}

int RunRequeue(const CliEnv& env, const Args& args) {
  v1::RequeueDeadLetterRequest request;
  request.set_referral_id(args[0]);
  return ReportLine(env, "requeue",
                    Client(env).RequeueDeadLetter(request, Unary(env)),
                    [&](const auto& r) { return RequeueLine(args[0], r); });
}

}  // namespace

const std::vector<CommandSpec>& OpsCommands() {
  static const auto* const kCommands = new std::vector<CommandSpec>{
      CommandSpec(
          "stats", "ops", "",
          "every queue: ready, claimed, dead letters, oldest ready, overdue, "
          "due within the hour; decisions and time-to-decision percentiles, "
          "notices; unacknowledged outcomes per agency. --watch redraws it "
          "every --watch_seconds (2) until Ctrl-C, or --watch_count times",
          {"watch", "watch_seconds", "watch_count"}, {}, 0, 0, RunStats),
      CommandSpec("health", "ops", "",
                  "is the broker serving (grpc.health.v1)? Prints SERVING, "
                  "NOT_SERVING, ...; exits 0 only for SERVING (for container "
                  "health checks)",
                  {"service"}, {}, 0, 0, RunHealth),
      CommandSpec("dead-letters", "ops", "QUEUE",
                  "referrals that exhausted deliveries",
                  {"page_size", "page_token"}, {}, 1, 1, RunDeadLetters),
      CommandSpec("requeue", "ops", "REFERRAL_ID",
                  "put a dead letter back in its queue", {}, {}, 1, 1,
                  RunRequeue),
  };
  return *kCommands;
}

}  // namespace referral::clients
