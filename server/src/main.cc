// referral_broker: serves the referral API on its embedded RocksDB store.
// SIGTERM/SIGINT shut down gracefully; SIGHUP reloads routing and calendar.
// Settings come from --config_file and the flags (broker_settings.h says
// how they combine); --check-config checks them and exits.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/internal/private_handle_accessor.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/json_log.h"
#include "server/broker.h"
#include "settings/broker_settings.h"

namespace {

// One copy of the defaults (see broker_settings.h); the flags show them in
// --help and ResolveBrokerSettings takes them from the flags.
const referral::config::v1::BrokerSettings& Defaults() {
  static const auto* const defaults = new referral::config::v1::BrokerSettings(
      referral::server::DefaultBrokerSettings());
  return *defaults;
}

}  // namespace

ABSL_FLAG(std::string, config_file, "",
          "settings file (referral.config.v1.BrokerSettings, text format); "
          "flags given on the command line override it");
ABSL_FLAG(bool, check_config, false,
          "check the settings (files, certificates, keys, rules) without "
          "opening the store, print \"config OK\" and exit 0, or the reason "
          "and exit 1; also spelt --check-config");
// Every setting below is described in
// server/proto/server/v1/broker_settings.proto.
ABSL_FLAG(std::string, listen, Defaults().listen(),
          "host:port to serve on; port 0 picks a free port");
ABSL_FLAG(std::string, metrics_listen, Defaults().metrics_listen(),
          "host:port of the Prometheus /metrics endpoint; empty: none");
ABSL_FLAG(std::string, health_listen, Defaults().health_listen(),
          "host:port of a plaintext port serving only gRPC health; empty: "
          "none");
ABSL_FLAG(std::string, port_file, Defaults().port_file(),
          "if set, the bound port is written here once serving");
ABSL_FLAG(std::string, metrics_port_file, Defaults().metrics_port_file(),
          "if set, the bound metrics port is written here once serving");
ABSL_FLAG(std::string, health_port_file, Defaults().health_port_file(),
          "if set, the bound health port is written here once serving");
ABSL_FLAG(std::string, data_dir, Defaults().data_dir(),
          "RocksDB data directory");
ABSL_FLAG(std::string, backup_dir, Defaults().backup_dir(),
          "where CreateBackup writes backups; empty: backups refused");
ABSL_FLAG(std::string, encryption_key_file, Defaults().encryption_key_file(),
          "key for encryption at rest (deploy/make-encryption-key.sh), kept "
          "outside the data directory; empty: not encrypted");
ABSL_FLAG(std::string, tls_certificate_file, Defaults().tls_certificate_file(),
          "the broker's certificate");
ABSL_FLAG(std::string, tls_private_key_file, Defaults().tls_private_key_file(),
          "the broker's private key");
ABSL_FLAG(std::string, tls_client_ca_file, Defaults().tls_client_ca_file(),
          "CA whose client certificates are accepted");
ABSL_FLAG(std::string, principals_file, Defaults().principals_file(),
          "maps client certificate identities to principals and roles");
ABSL_FLAG(bool, insecure_development, Defaults().insecure_development(),
          "plaintext and no authentication, loopback only: development");
ABSL_FLAG(std::string, routing_file, Defaults().routing_file(),
          "routing rules (text format); default: shipped server/config");
ABSL_FLAG(std::string, calendar_file, Defaults().calendar_file(),
          "working calendar (text format); default: shipped server/config");
ABSL_FLAG(int, lease_seconds, Defaults().lease_seconds(),
          "lease for a claim that asks for none");
ABSL_FLAG(int, max_lease_seconds, Defaults().max_lease_seconds(),
          "longest lease a claim may ask for");
ABSL_FLAG(int, max_deliveries, Defaults().max_deliveries(),
          "failed deliveries (releases, lease expiries) before dead-lettering");
ABSL_FLAG(int, lease_check_ms, Defaults().lease_check_ms(),
          "how often expired leases are returned");
ABSL_FLAG(int, repeated_concern_days, Defaults().repeated_concern_days(),
          "window for counting earlier referrals about a child");
ABSL_FLAG(int, repeated_concern_threshold,
          Defaults().repeated_concern_threshold(),
          "earlier referrals in the window that mark a repeated concern");
ABSL_FLAG(int, outcome_ack_overdue_hours,
          Defaults().outcome_ack_overdue_hours(),
          "hours after a decision at which an outcome the referrer has not "
          "acknowledged shows as overdue in the ops stats");
ABSL_FLAG(int, decision_stats_days, Defaults().decision_stats_days(),
          "window (days) of the per-queue time-to-decision figures");
ABSL_FLAG(double, rate_limit_per_second, Defaults().rate_limit_per_second(),
          "average calls per second allowed to each principal");
ABSL_FLAG(double, rate_limit_burst, Defaults().rate_limit_burst(),
          "calls a principal may make at once before the average applies");
ABSL_FLAG(int, max_message_bytes, Defaults().max_message_bytes(),
          "largest request accepted");
ABSL_FLAG(int, shutdown_grace_seconds, Defaults().shutdown_grace_seconds(),
          "time in-flight calls get to finish on shutdown");
ABSL_FLAG(int, shutdown_drain_seconds, Defaults().shutdown_drain_seconds(),
          "time health reports NOT_SERVING before shutdown stops accepting "
          "calls");
ABSL_FLAG(std::string, log_level, Defaults().log_level(),
          "debug, info, warning or error");

namespace {

using referral::LogEvent;
using referral::LogLevel;

// absl spells flags with underscores; operators type --check-config. The
// argument is rewritten in place (argv strings are writable) before absl
// parses it.
void AcceptCheckConfigSpelling(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") return;
    for (const std::string_view spelling :
         {"--check-config", "-check-config"}) {
      if (arg.starts_with(spelling) &&
          (arg.size() == spelling.size() || arg[spelling.size()] == '=')) {
        argv[i][spelling.size() - std::strlen("-config")] = '_';
      }
    }
  }
}

std::optional<referral::server::SettingFlag> LookUpFlag(
    const std::string& name) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr) return std::nullopt;
  // Abseil 20220623 keeps CommandLineFlag::IsSpecifiedOnCommandLine()
  // private and exposes it through this accessor (later releases make it
  // public). Comparing with the default would not do: a flag given with
  // its default value must still override the file.
  return referral::server::SettingFlag{
      flag->CurrentValue(),
      absl::flags_internal::PrivateHandleAccessor::IsSpecifiedOnCommandLine(
          *flag)};
}

// Written then renamed, so a reader never sees a half-written port.
bool WritePortFile(const std::string& path, int port) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    if (!(out << port << "\n")) return false;
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  return !error;
}

// --check-config: never opens the store or binds a port.
int CheckConfig(
    const absl::StatusOr<referral::server::ResolvedBrokerSettings>& resolved,
    const absl::Status& checked) {
  absl::StatusOr<std::string> summary =
      checked.ok() ? referral::server::DescribeBrokerSettings(*resolved)
                   : checked;
  if (!summary.ok()) {
    std::fprintf(stderr, "config error: %s\n",
                 std::string(summary.status().message()).c_str());
    return 1;
  }
  std::printf("config OK\n%s", summary->c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which turns on Mutex deadlock
  // detection: every lock and unlock updates a global lock graph (a few
  // percent of the broker's CPU under load, measured with perf). The tests,
  // which run the same code in-process, keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(
      "Serves the multi-agency referral broker.\n"
      "  referral_broker --config_file=/etc/referral-broker/broker.txtpb\n"
      "  referral_broker --config_file=... --check-config\n"
      "  referral_broker --listen=127.0.0.1:50051 --data_dir=data ...");
  // --help lists the settings defined here (absl's default looks for a
  // file named after the program).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "/server/src/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  AcceptCheckConfigSpelling(argc, argv);
  absl::ParseCommandLine(argc, argv);

  absl::StatusOr<referral::server::ResolvedBrokerSettings> resolved =
      referral::server::ResolveBrokerSettings(absl::GetFlag(FLAGS_config_file),
                                              LookUpFlag);
  const absl::Status checked =
      resolved.ok() ? referral::server::CheckBrokerSettings(*resolved)
                    : resolved.status();
  if (absl::GetFlag(FLAGS_check_config)) return CheckConfig(resolved, checked);
  if (!checked.ok()) {
    LogEvent(LogLevel::kError, "broker_start_failed",
             {{"reason", std::string(checked.message())}});
    return 1;
  }
  const referral::config::v1::BrokerSettings& settings = resolved->settings;
  LogLevel level = LogLevel::kInfo;
  referral::ParseLogLevel(settings.log_level(), &level);
  referral::SetLogLevel(level);

  // Block the signals we handle before any thread starts, so every thread
  // inherits the mask and only the sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto broker = referral::server::Broker::Start(
      referral::server::ToBrokerOptions(settings));
  if (!broker.ok()) {
    LogEvent(LogLevel::kError, "broker_start_failed",
             {{"reason", std::string(broker.status().message())}});
    return 1;
  }
  // The gRPC port file last: a reader that sees it finds the others.
  const std::pair<const std::string&, int> port_files[] = {
      {settings.metrics_port_file(), (*broker)->metrics_port()},
      {settings.health_port_file(), (*broker)->health_port()},
      {settings.port_file(), (*broker)->port()},
  };
  for (const auto& [path, port] : port_files) {
    // 0: that endpoint is off.
    if (path.empty() || port == 0) continue;
    if (!WritePortFile(path, port)) {
      LogEvent(LogLevel::kError, "port_file_failed", {{"path", path}});
      return 1;
    }
  }

  for (;;) {
    int signal_number = 0;
    if (sigwait(&signals, &signal_number) != 0) continue;
    if (signal_number == SIGHUP) {
      (void)(*broker)->ReloadRules();
      continue;
    }
    LogEvent(LogLevel::kInfo, "shutdown_requested",
             {{"signal", absl::StrCat(signal_number)}});
    (*broker)->Shutdown();
    return 0;
  }
}
