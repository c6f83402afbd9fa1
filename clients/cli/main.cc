// referral_cli: the command-line client of the referral broker for partner
// agencies, front-door triage staff and operations. `referral_cli --help`
// lists the commands; clients/cli/cli_commands.h describes them and the
// exit codes. This file only turns the command line into options.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "broker_channel.h"
#include "cli_args.h"
#include "cli_commands.h"
#include "connection_flags.h"

// Connection flags: every command accepts them, those of
// connection_flags.h and these.
ABSL_FLAG(std::string, on_behalf_of, "",
          "staff member the call is made for, sent to the broker's audit "
          "trail");
ABSL_FLAG(bool, plaintext, false,
          "connect without TLS, ignoring $REFERRAL_CA, $REFERRAL_CERT and "
          "$REFERRAL_KEY (development broker, plaintext health port)");
ABSL_FLAG(bool, json, false, "print responses as protobuf JSON");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "deadline per call");

// Subcommand flags: each command accepts only those it lists.
ABSL_FLAG(std::string, idempotency_key, "", "submit: idempotency key");
ABSL_FLAG(std::string, agency, "", "agency id (outcomes; submit override)");
ABSL_FLAG(int, page_size, 0, "page size (0: broker default)");
ABSL_FLAG(std::string, page_token, "", "page token from a previous page");
ABSL_FLAG(int, max, 1, "claim: referrals to lease at most");
ABSL_FLAG(int, lease_seconds, 0, "lease length (0: broker default)");
ABSL_FLAG(std::string, worker, "", "claim: triage worker name");
ABSL_FLAG(std::string, token, "", "lease token from claim");
ABSL_FLAG(std::string, reason, "", "release: why");
ABSL_FLAG(std::string, decision, "", "decide: the decision");
ABSL_FLAG(std::string, rationale, "", "decide: the rationale");
ABSL_FLAG(std::string, feedback, "", "decide: feedback for the referrer");
ABSL_FLAG(absl::Duration, since, absl::Hours(24),
          "audit-export: how far back from now");
ABSL_FLAG(int, limit, 0, "audit-export: most records (0: broker default)");
ABSL_FLAG(bool, watch, false, "stats: refresh until interrupted");
ABSL_FLAG(int, watch_seconds, 2, "stats --watch: seconds between refreshes");
ABSL_FLAG(int, watch_count, 0,
          "stats --watch: stop after this many refreshes (0: no limit)");
ABSL_FLAG(uint32_t, backup_id, 0, "backup verify: the backup to check");
ABSL_FLAG(std::string, service, "",
          "health: the service to ask about (default: the whole broker)");

namespace referral::clients {
namespace {

constexpr char kProgram[] = "referral_cli";

const std::vector<std::string>& GlobalFlags() {
  static const auto* const kFlags = [] {
    auto* flags = new std::vector<std::string>(ConnectionFlagNames());
    flags->insert(flags->end(),
                  {"json", "timeout", "on_behalf_of", "plaintext"});
    return flags;
  }();
  return *kFlags;
}

bool Contains(const std::vector<std::string>& names, absl::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Only the flags defined above: absl also registers its own (--flagfile,
// --fromenv...), which this tool does not offer.
bool IsOwnFlag(absl::string_view name) {
  if (Contains(GlobalFlags(), name)) return true;
  for (const CommandSpec& spec : Commands()) {
    if (Contains(spec.flags, name)) return true;
  }
  return false;
}

CliOptions CliOptionsFromFlags(const std::vector<std::string>& given) {
  CliOptions o;
  o.json = absl::GetFlag(FLAGS_json);
  o.timeout = absl::GetFlag(FLAGS_timeout);
  o.timeout_given = Contains(given, "timeout");
  o.idempotency_key = absl::GetFlag(FLAGS_idempotency_key);
  o.agency = absl::GetFlag(FLAGS_agency);
  o.page_size = absl::GetFlag(FLAGS_page_size);
  o.page_token = absl::GetFlag(FLAGS_page_token);
  o.max = absl::GetFlag(FLAGS_max);
  o.lease_seconds = absl::GetFlag(FLAGS_lease_seconds);
  o.worker = absl::GetFlag(FLAGS_worker);
  o.token = absl::GetFlag(FLAGS_token);
  o.reason = absl::GetFlag(FLAGS_reason);
  o.decision = absl::GetFlag(FLAGS_decision);
  o.rationale = absl::GetFlag(FLAGS_rationale);
  o.feedback = absl::GetFlag(FLAGS_feedback);
  o.since = absl::GetFlag(FLAGS_since);
  o.limit = absl::GetFlag(FLAGS_limit);
  o.watch = absl::GetFlag(FLAGS_watch);
  o.watch_interval = absl::Seconds(absl::GetFlag(FLAGS_watch_seconds));
  o.watch_count = absl::GetFlag(FLAGS_watch_count);
  o.backup_id = absl::GetFlag(FLAGS_backup_id);
  o.service = absl::GetFlag(FLAGS_service);
  return o;
}

int Usage(absl::string_view message) {
  std::cerr << kProgram << ": " << message << "\n"
            << "run '" << kProgram << " --help' for the list of commands\n";
  return kExitUsage;
}

// Ctrl-C or SIGTERM: a running watch (or stats --watch) is cancelled and
// ends cleanly; any other command just stops. Signals are taken on a thread of
// their own because cancelling a call is not async-signal-safe.
void HandleSignalsOnThread(CallCanceller* canceller) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  // Blocked before gRPC starts its threads, so they inherit the mask and
  // only the waiting thread sees these signals.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals, canceller] {
    int signal_number = 0;
    while (sigwait(&signals, &signal_number) == 0) {
      if (!canceller->Cancel()) _exit(128 + signal_number);
    }
  }).detach();
}

int Main(int argc, char** argv) {
  const std::vector<std::string> raw(argv + 1, argv + argc);
  absl::StatusOr<SplitArgs> split =
      SplitCommandLine(raw, [](absl::string_view name) -> std::optional<bool> {
        if (!IsOwnFlag(name)) return std::nullopt;
        const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
        if (flag == nullptr) return std::nullopt;
        return flag->IsOfType<bool>();
      });
  if (!split.ok()) return Usage(split.status().message());

  std::vector<std::string> positional = split->positional;
  if (!positional.empty() && IsCommandGroup(positional[0]) &&
      positional.size() > 1) {
    positional.erase(positional.begin());
  }
  if (positional.empty()) {
    if (split->help) {
      std::cout << UsageText(kProgram);
      return kExitOk;
    }
    std::cerr << UsageText(kProgram);
    return kExitUsage;
  }
  const CommandSpec* spec = FindCommand(positional[0]);
  if (spec == nullptr && IsCommandGroup(positional[0])) {
    return Usage(absl::StrCat("give a command after \"", positional[0], "\""));
  }
  if (spec == nullptr) {
    return Usage(absl::StrCat("unknown command \"", positional[0], "\""));
  }
  if (split->help) {
    std::cout << CommandUsage(kProgram, *spec) << "\n  " << spec->summary
              << "\n";
    return kExitOk;
  }

  std::vector<std::string> given;
  for (const FlagArg& arg : split->flags) {
    if (!Contains(GlobalFlags(), arg.name) &&
        !Contains(spec->flags, arg.name)) {
      return Usage(absl::StrCat(
          "--", arg.name, " does not apply to ", spec->name,
          spec->flags.empty()
              ? ""
              : absl::StrCat(" (it takes --",
                             absl::StrJoin(spec->flags, ", --"), ")")));
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(arg.name);
    std::string error;
    if (flag == nullptr || !flag->ParseFrom(arg.value, &error)) {
      return Usage(absl::StrCat("invalid value for --", arg.name, ": ", error));
    }
    given.push_back(arg.name);
  }
  const CliOptions options = CliOptionsFromFlags(given);
  if (options.timeout <= absl::ZeroDuration()) {
    return Usage("--timeout must be positive");
  }
  if (absl::GetFlag(FLAGS_plaintext)) {
    for (const char* tls_flag : {"ca", "cert", "key", "tls_server_name"}) {
      if (Contains(given, tls_flag)) {
        return Usage(absl::StrCat("--plaintext and --", tls_flag,
                                  " contradict each other"));
      }
    }
  }
  for (const char* watch_flag : {"watch_seconds", "watch_count"}) {
    if (Contains(given, watch_flag) && !options.watch) {
      return Usage(absl::StrCat("--", watch_flag, " needs --watch"));
    }
  }
  if (options.watch && absl::GetFlag(FLAGS_watch_seconds) < 1) {
    return Usage("--watch_seconds must be at least 1");
  }

  static CallCanceller canceller;
  HandleSignalsOnThread(&canceller);
  ChannelOptions channel_options =
      ChannelOptionsFromFlags(given, /*tls=*/!absl::GetFlag(FLAGS_plaintext));
  channel_options.user_agent = "referral_cli";
  channel_options.on_behalf_of = absl::GetFlag(FLAGS_on_behalf_of);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectToBroker(channel_options);
  if (!channel.ok()) return Usage(channel.status().message());

  CliEnv env;
  env.channel = *std::move(channel);
  env.options = options;
  env.out = &std::cout;
  env.err = &std::cerr;
  env.out_is_terminal = isatty(STDOUT_FILENO) == 1;
  env.canceller = &canceller;
  const std::vector<std::string> args(positional.begin() + 1, positional.end());
  const int code = RunCommand(*spec, env, args, given);
  std::cout.flush();
  return code;
}

}  // namespace
}  // namespace referral::clients

int main(int argc, char** argv) { return referral::clients::Main(argc, argv); }
