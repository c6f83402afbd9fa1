// referral_broker: serves the referral API on its embedded RocksDB store.
// SIGTERM/SIGINT shut down gracefully; SIGHUP reloads routing and calendar.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "event_log.h"
#include "server/broker.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "host:port to serve on; port 0 picks a free port");
ABSL_FLAG(std::string, data_dir, "data", "RocksDB data directory");
ABSL_FLAG(std::string, encryption_key_file, "",
          "key for encryption at rest (deploy/make-encryption-key.sh), kept "
          "outside the data directory; empty: not encrypted");
ABSL_FLAG(std::string, tls_certificate_file, "", "the broker's certificate");
ABSL_FLAG(std::string, tls_private_key_file, "", "the broker's private key");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "CA whose client certificates are accepted");
ABSL_FLAG(std::string, principals_file, "",
          "maps client certificate identities to principals and roles");
ABSL_FLAG(bool, insecure_development, false,
          "plaintext and no authentication, loopback only: development");
ABSL_FLAG(double, rate_limit_per_second, 500,
          "average calls per second allowed to each principal");
ABSL_FLAG(double, rate_limit_burst, 5000,
          "calls a principal may make at once before the average applies");
ABSL_FLAG(std::string, port_file, "",
          "if set, the bound port is written here once serving");
ABSL_FLAG(std::string, routing_file, "",
          "routing rules (text format); default: shipped server/config");
ABSL_FLAG(std::string, calendar_file, "",
          "working calendar (text format); default: shipped server/config");
ABSL_FLAG(int, lease_seconds, 1800, "lease for a claim that asks for none");
ABSL_FLAG(int, max_lease_seconds, 86400, "longest lease a claim may ask for");
ABSL_FLAG(int, max_deliveries, 5,
          "failed deliveries (releases, lease expiries) before dead-lettering");
ABSL_FLAG(int, lease_check_ms, 200, "how often expired leases are returned");
ABSL_FLAG(int, repeated_concern_days, 365,
          "window for counting earlier referrals about a child");
ABSL_FLAG(int, repeated_concern_threshold, 3,
          "earlier referrals in the window that mark a repeated concern");
ABSL_FLAG(int, outcome_ack_overdue_hours, 24,
          "hours after a decision at which an outcome the referrer has not "
          "acknowledged shows as overdue in the ops stats");
ABSL_FLAG(int, decision_stats_days, 28,
          "window (days) of the per-queue time-to-decision figures");
ABSL_FLAG(int, max_message_bytes, 4 * 1024 * 1024, "largest request accepted");
ABSL_FLAG(int, shutdown_grace_seconds, 10,
          "time in-flight calls get to finish on shutdown");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error");

namespace {

using referral::server::LogEvent;
using referral::server::LogLevel;

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

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Serves the multi-agency referral broker.\n"
      "  referral_broker --listen=127.0.0.1:50051 --data_dir=data");
  absl::ParseCommandLine(argc, argv);

  LogLevel level;
  if (!referral::server::ParseLogLevel(absl::GetFlag(FLAGS_log_level),
                                       &level)) {
    std::fprintf(stderr, "--log_level must be debug, info, warning or error\n");
    return 2;
  }
  referral::server::SetLogLevel(level);

  // Block the signals we handle before any thread starts, so every thread
  // inherits the mask and only the sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  referral::server::BrokerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.encryption_key_file = absl::GetFlag(FLAGS_encryption_key_file);
  options.tls_certificate_file = absl::GetFlag(FLAGS_tls_certificate_file);
  options.tls_private_key_file = absl::GetFlag(FLAGS_tls_private_key_file);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  options.principals_file = absl::GetFlag(FLAGS_principals_file);
  options.insecure_development = absl::GetFlag(FLAGS_insecure_development);
  options.rate_limit_per_second = absl::GetFlag(FLAGS_rate_limit_per_second);
  options.rate_limit_burst = absl::GetFlag(FLAGS_rate_limit_burst);
  options.routing_file = absl::GetFlag(FLAGS_routing_file);
  options.calendar_file = absl::GetFlag(FLAGS_calendar_file);
  options.default_lease = absl::Seconds(absl::GetFlag(FLAGS_lease_seconds));
  options.max_lease = absl::Seconds(absl::GetFlag(FLAGS_max_lease_seconds));
  options.max_deliveries = absl::GetFlag(FLAGS_max_deliveries);
  options.lease_check_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_lease_check_ms));
  options.repeated_concern_window =
      absl::Hours(24) * absl::GetFlag(FLAGS_repeated_concern_days);
  options.repeated_concern_threshold =
      absl::GetFlag(FLAGS_repeated_concern_threshold);
  options.outcome_ack_overdue =
      absl::Hours(absl::GetFlag(FLAGS_outcome_ack_overdue_hours));
  options.decision_stats_window =
      absl::Hours(24) * absl::GetFlag(FLAGS_decision_stats_days);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.shutdown_grace =
      absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds));

  auto broker = referral::server::Broker::Start(options);
  if (!broker.ok()) {
    LogEvent(LogLevel::kError, "broker_start_failed",
             {{"reason", std::string(broker.status().message())}});
    return 1;
  }
  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty() && !WritePortFile(port_file, (*broker)->port())) {
    LogEvent(LogLevel::kError, "port_file_failed", {{"path", port_file}});
    return 1;
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
