// referral_console: the front door's triage console. An HTTPS gateway that
// serves the page in clients/console/web and talks to the broker over gRPC
// with mutual TLS as its own triage principal, acting for each signed-in
// staff member (x-referral-on-behalf-of).
//
//   referral_console --listen=0.0.0.0:8443 --tls_cert=console.pem
//       --tls_key=console.key --users_file=/etc/referral-console/users
//       --broker=broker:50051 --ca=ca.pem --client_cert=triage-console.pem
//       --client_key=triage-console.key
//   referral_console add-user --users_file=F --user=NAME   (password on stdin)
#include <fcntl.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/json_log.h"
#include "broker_channel.h"
#include "console_gateway.h"
#include "console_server.h"
#include "console_users.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8443",
          "host:port the console serves HTTPS on; port 0 picks a free port");
ABSL_FLAG(std::string, port_file, "",
          "file the bound port is written to once serving");
ABSL_FLAG(std::string, tls_cert, "", "the console's HTTPS certificate (PEM)");
ABSL_FLAG(std::string, tls_key, "", "its private key (PEM, unencrypted)");
ABSL_FLAG(std::string, web_root, "",
          "folder of index.html, app.js, app.css (default: web/ next to the "
          "binary, else the source tree's clients/console/web)");
ABSL_FLAG(std::string, users_file, "",
          "staff users and Argon2id password hashes (add-user writes it)");
ABSL_FLAG(std::string, broker, "127.0.0.1:50051", "the broker's host:port");
ABSL_FLAG(std::string, ca, "", "CA bundle the broker's certificate chains to");
ABSL_FLAG(std::string, client_cert, "",
          "the console's client certificate for the broker (a triage "
          "principal, e.g. triage-console.pem)");
ABSL_FLAG(std::string, client_key, "", "its private key");
ABSL_FLAG(std::string, queues,
          "ifd-urgent,ifd-triage,out-of-area,edt-out-of-hours",
          "queues shown, in this order (comma-separated)");
ABSL_FLAG(int, lease_seconds, 1800, "lease of a claim made in the console");
ABSL_FLAG(int, stats_interval_seconds, 60,
          "how often queue depth is sampled for the overview chart");
ABSL_FLAG(int, stats_retention_hours, 24, "how much depth history is kept");
ABSL_FLAG(int, session_idle_minutes, 30, "sign-out after this long idle");
ABSL_FLAG(int, session_max_hours, 10, "sign-out this long after sign-in");
ABSL_FLAG(int, max_event_streams, 32, "live browser streams, all queues");
ABSL_FLAG(bool, log_requests, false,
          "log every HTTP request (method, path, status) at debug level");
ABSL_FLAG(std::string, user, "", "add-user: the staff member's name");
ABSL_FLAG(int, argon2_iterations, 3, "add-user: Argon2id time cost");
ABSL_FLAG(int, argon2_memory_kib, 64 * 1024, "add-user: Argon2id memory (KiB)");

namespace {

using referral::LogEvent;
using referral::LogLevel;

std::string DefaultWebRoot(const char* argv0) {
  std::error_code error;
  const std::filesystem::path self =
      std::filesystem::read_symlink("/proc/self/exe", error);
  const std::filesystem::path beside =
      (error ? std::filesystem::path(argv0) : self).parent_path() / "web";
  if (std::filesystem::exists(beside / "index.html")) return beside.string();
  return REFERRAL_CONSOLE_WEB_ROOT;
}

// Reads the password from stdin: without echo (asked twice) on a terminal,
// else the first line. Never from argv, where `ps` would show it.
bool ReadPassword(std::string* password) {
  if (isatty(STDIN_FILENO)) {
    termios saved{};
    tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    std::string again;
    std::cerr << "Password: " << std::flush;
    std::getline(std::cin, *password);
    std::cerr << "\nAgain: " << std::flush;
    std::getline(std::cin, again);
    std::cerr << "\n";
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    if (again != *password) {
      std::cerr << "add-user: the passwords differ\n";
      return false;
    }
    return true;
  }
  if (!std::getline(std::cin, *password)) return false;
  if (!password->empty() && password->back() == '\r') password->pop_back();
  return true;
}

int AddUserCommand() {
  const std::string file = absl::GetFlag(FLAGS_users_file);
  const std::string user = absl::GetFlag(FLAGS_user);
  if (file.empty() || user.empty()) {
    std::cerr << "usage: referral_console add-user --users_file=F --user=NAME "
                 "(password on stdin)\n";
    return 2;
  }
  std::string password;
  if (!ReadPassword(&password)) {
    std::cerr << "add-user: no password on stdin\n";
    return 2;
  }
  referral::clients::PasswordCost cost;
  cost.iterations =
      static_cast<uint32_t>(absl::GetFlag(FLAGS_argon2_iterations));
  cost.memory_kib =
      static_cast<uint32_t>(absl::GetFlag(FLAGS_argon2_memory_kib));
  absl::Status added = referral::clients::AddUser(file, user, password, cost);
  if (!added.ok()) {
    std::cerr << "add-user: " << added.message() << "\n";
    return absl::IsInvalidArgument(added) ? 2 : 1;
  }
  std::cout << "user " << user << " written to " << file << "\n";
  return 0;
}

bool SplitHostPort(const std::string& listen, std::string* host, int* port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  *host = listen.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return !host->empty() && absl::SimpleAtoi(listen.substr(colon + 1), port) &&
         *port >= 0 && *port <= 65535;
}

bool WritePortFile(const std::string& path, int port) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << port << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(temp.c_str(), path.c_str()) == 0;
}

int ServeCommand(const char* argv0, const sigset_t& signals) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(absl::GetFlag(FLAGS_listen), &host, &port)) {
    std::cerr << "referral_console: --listen must be host:port\n";
    return 2;
  }
  referral::clients::ChannelOptions channel_options;
  channel_options.address = absl::GetFlag(FLAGS_broker);
  channel_options.ca_file = absl::GetFlag(FLAGS_ca);
  channel_options.cert_file = absl::GetFlag(FLAGS_client_cert);
  channel_options.key_file = absl::GetFlag(FLAGS_client_key);
  channel_options.user_agent = "referral-console";
  auto channel = referral::clients::ConnectToBroker(channel_options);
  if (!channel.ok()) {
    std::cerr << "referral_console: broker: " << channel.status().message()
              << "\n";
    return 2;
  }
  if (channel_options.ca_file.empty()) {
    LogEvent(LogLevel::kWarning, "broker_plaintext",
             {{"reason",
               "no --ca: plaintext to the broker "
               "(development only)"}});
  }

  referral::clients::GatewayOptions gateway_options;
  gateway_options.queues =
      absl::StrSplit(absl::GetFlag(FLAGS_queues), ',', absl::SkipEmpty());
  gateway_options.lease_seconds = absl::GetFlag(FLAGS_lease_seconds);
  gateway_options.stats_interval =
      absl::Seconds(std::max(1, absl::GetFlag(FLAGS_stats_interval_seconds)));
  gateway_options.stats_retention =
      absl::Hours(std::max(1, absl::GetFlag(FLAGS_stats_retention_hours)));
  gateway_options.max_event_streams =
      static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_max_event_streams)));
  referral::clients::ConsoleGateway gateway(*channel, gateway_options);

  referral::clients::ConsoleServerOptions server_options;
  server_options.host = host;
  server_options.port = port;
  server_options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  server_options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  server_options.users_file = absl::GetFlag(FLAGS_users_file);
  server_options.web_root = absl::GetFlag(FLAGS_web_root).empty()
                                ? DefaultWebRoot(argv0)
                                : absl::GetFlag(FLAGS_web_root);
  server_options.sessions.idle_timeout =
      absl::Minutes(absl::GetFlag(FLAGS_session_idle_minutes));
  server_options.sessions.absolute_timeout =
      absl::Hours(absl::GetFlag(FLAGS_session_max_hours));
  server_options.http_threads =
      static_cast<int>(gateway_options.max_event_streams) + 16;

  // Debug lines (one per HTTP request) only when asked for.
  if (absl::GetFlag(FLAGS_log_requests))
    referral::SetLogLevel(LogLevel::kDebug);

  auto server =
      referral::clients::ConsoleServer::Create(server_options, &gateway);
  if (!server.ok()) {
    LogEvent(LogLevel::kError, "console_start_failed",
             {{"reason", std::string(server.status().message())}});
    return 1;
  }
  gateway.Start();
  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty() && !WritePortFile(port_file, (*server)->port())) {
    LogEvent(LogLevel::kError, "console_start_failed",
             {{"reason", "--port_file: cannot write"}});
    return 1;
  }
  LogEvent(LogLevel::kInfo, "console_started",
           {{"port", absl::StrCat((*server)->port())},
            {"broker", channel_options.address}});

  std::thread waiter([&server, signals] {
    int received = 0;
    sigwait(&signals, &received);
    LogEvent(LogLevel::kInfo, "console_stopping",
             {{"signal", absl::StrCat(received)}});
    (*server)->Stop();
  });
  absl::Status served = (*server)->Serve();
  if (!served.ok()) {
    LogEvent(LogLevel::kError, "console_failed",
             {{"reason", std::string(served.message())}});
    // Wake the waiter so the process can exit.
    kill(getpid(), SIGTERM);
  }
  waiter.join();
  gateway.Stop();
  LogEvent(LogLevel::kInfo, "console_stopped");
  return served.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the front door's triage console (HTTPS gateway to the broker)\n"
      "  referral_console --tls_cert=C --tls_key=K --users_file=F "
      "--broker=H:P --ca=CA --client_cert=C --client_key=K\n"
      "  referral_console add-user --users_file=F --user=NAME  (password on "
      "stdin)");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() >= 2 && std::string(args[1]) == "add-user") {
    return AddUserCommand();
  }
  if (args.size() > 1) {
    std::cerr << "referral_console: unknown subcommand " << args[1] << "\n";
    return 2;
  }
  // SIGINT and SIGTERM are taken by one thread with sigwait, so that the
  // shutdown runs as ordinary code (not in a signal handler). Blocked
  // before any thread starts (gRPC starts its own), so every thread
  // inherits the mask and none is killed by the default action.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return ServeCommand(argv[0], signals);
}
