// Test support: a real broker binary started as a child process on an
// ephemeral loopback port with its own data directory, and temporary
// directories that clean up after themselves.
#ifndef REFERRAL_TESTS_SUPPORT_BROKER_PROCESS_H_
#define REFERRAL_TESTS_SUPPORT_BROKER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace referral::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on
// destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct BrokerProcessOptions {
  std::string data_dir;
  // Extra command-line flags, e.g. "--max_deliveries=2".
  std::vector<std::string> flags;
  // Plaintext without authentication (the broker allows it on loopback
  // only). Tests of TLS and authorisation turn it off and pass --tls_*.
  bool insecure_development = true;
  // Where the broker's stderr goes (appended); empty: inherit.
  std::string log_file;
  // Also serve the plaintext health-only port (--health_listen) on an
  // ephemeral port.
  bool health_port = false;
  // Extra environment variables for the broker, "NAME=value" (e.g.
  // LD_PRELOAD for fault-injection shims).
  std::vector<std::string> env = {};
};

class BrokerProcess {
 public:
  // Starts the broker on 127.0.0.1:0 and waits until it reports the port it
  // is serving on (through --port_file).
  static absl::StatusOr<std::unique_ptr<BrokerProcess>> Start(
      BrokerProcessOptions options);
  // Kills the process if it still runs.
  ~BrokerProcess();

  int port() const { return port_; }
  std::string address() const;
  // The Prometheus endpoint (always on, on an ephemeral port).
  int metrics_port() const { return metrics_port_; }
  // The health-only port when options.health_port, else 0.
  int health_port() const { return health_port_; }
  pid_t pid() const { return pid_; }

  // SIGKILL: the crash the store must survive.
  void Kill();
  // SIGTERM and wait; returns the exit code (or 128+signal).
  absl::StatusOr<int> Terminate();

 private:
  BrokerProcess(pid_t pid, int port, int metrics_port, int health_port)
      : pid_(pid),
        port_(port),
        metrics_port_(metrics_port),
        health_port_(health_port) {}
  pid_t pid_;
  int port_;
  int metrics_port_;
  int health_port_;
  bool reaped_ = false;
};

// Any other binary run in the background with its output going to files,
// for tests that interact with a long-running command (e.g. `watch`).
class ChildProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::vector<std::string>& argv, const std::string& stdout_path,
      const std::string& stderr_path);
  // SIGKILL if still running.
  ~ChildProcess();
  void Signal(int signal_number);
  // Waits for exit; returns the exit code (or 128+signal).
  absl::StatusOr<int> Wait();

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  bool reaped_ = false;
};

// Polls `path` until it contains `text` or `timeout` passes.
bool WaitForFileToContain(const std::string& path, const std::string& text,
                          absl::Duration timeout);

// Runs a binary to completion and returns its exit code and stdout
// and stderr.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv);

}  // namespace referral::testing

#endif  // REFERRAL_TESTS_SUPPORT_BROKER_PROCESS_H_
