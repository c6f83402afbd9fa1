// referral_broker: serves the referral API on its embedded RocksDB store.
// SIGTERM/SIGINT shut down gracefully; SIGHUP reloads routing and calendar.
// Settings come from --config_file and the flags (broker_command_line.h
// reads the command line, broker_settings.h says how they combine);
// --check-config checks them and exits; --help lists them.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/json_log.h"
#include "server/broker.h"
#include "settings/broker_command_line.h"
#include "settings/broker_settings.h"
#include "settings/declared_settings.h"

namespace {

using referral::LogEvent;
using referral::LogLevel;

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
  absl::StatusOr<referral::server::BrokerCommandLine> command_line =
      referral::server::ParseBrokerCommandLine({argv + 1, argv + argc});
  if (!command_line.ok()) {
    std::fprintf(stderr, "referral_broker: %s (see --help)\n",
                 std::string(command_line.status().message()).c_str());
    return 1;
  }
  const referral::config::v1::BrokerCommand& command = command_line->command;
  if (command.help()) {
    std::printf("%s", referral::server::BrokerUsage().c_str());
    return 0;
  }
  if (command.settings_table()) {
    std::printf("%s", referral::server::SettingsTable(
                          referral::config::v1::BrokerSettings::descriptor())
                          .c_str());
    return 0;
  }

  absl::StatusOr<referral::server::ResolvedBrokerSettings> resolved =
      referral::server::ResolveBrokerSettings(command.config_file(),
                                              command_line->settings);
  const absl::Status checked =
      resolved.ok() ? referral::server::CheckBrokerSettings(*resolved)
                    : resolved.status();
  if (command.check_config()) return CheckConfig(resolved, checked);
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

  referral::server::BrokerOptions options;
  options.settings = settings;
  auto broker = referral::server::Broker::Start(std::move(options));
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
