#include "support/broker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace referral::testing {
namespace {

// In a forked child: SIGKILL when the test that started it dies, so a test
// that crashes leaves no broker behind holding ctest's output pipe open
// (ctest then waits out the whole timeout). The kernel sends it when the
// forking thread exits: tests start processes from their main thread.
void DieWithTest(pid_t test_pid) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != test_pid) _exit(126);  // the test died before prctl
}

std::vector<char*> ToArgv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
  return out;
}

// Waits for `pid` to exit; its exit code, or 128+signal when killed.
absl::StatusOr<int> WaitForExit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) {
    return absl::InternalError("waitpid failed");
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

// The port a broker wrote to `path`, or 0 if none (yet).
int ReadPortFile(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  int port = 0;
  if (in && std::getline(in, text) && absl::SimpleAtoi(text, &port)) {
    return port;
  }
  return 0;
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(base && *base ? base : "/tmp", "/referral-test-XXXXXX");
  char* made = mkdtemp(pattern.data());
  path_ = made ? made : "";
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

absl::StatusOr<std::unique_ptr<BrokerProcess>> BrokerProcess::Start(
    BrokerProcessOptions options) {
  const std::string port_file = options.data_dir + ".port";
  const std::string metrics_port_file = options.data_dir + ".metrics_port";
  const std::string health_port_file = options.data_dir + ".health_port";
  for (const std::string& file :
       {port_file, metrics_port_file, health_port_file}) {
    std::filesystem::remove(file);
  }
  std::vector<std::string> args = {REFERRAL_BROKER_BIN,
                                   "--listen=127.0.0.1:0",
                                   "--data_dir=" + options.data_dir,
                                   "--port_file=" + port_file,
                                   "--metrics_listen=127.0.0.1:0",
                                   "--metrics_port_file=" + metrics_port_file};
  if (options.health_port) {
    args.push_back("--health_listen=127.0.0.1:0");
    args.push_back("--health_port_file=" + health_port_file);
  }
  if (options.insecure_development) args.push_back("--insecure_development");
  args.insert(args.end(), options.flags.begin(), options.flags.end());
  std::vector<char*> argv = ToArgv(args);

  const pid_t test_pid = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    DieWithTest(test_pid);
    if (!options.log_file.empty()) {
      int fd = open(options.log_file.c_str(),
                    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd >= 0) dup2(fd, STDERR_FILENO);
    }
    for (std::string& variable : options.env) putenv(variable.data());
    execv(argv[0], argv.data());
    _exit(127);
  }

  // The broker writes the port file (atomically, by rename) once it serves.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return absl::FailedPreconditionError(
          absl::StrCat("broker exited during start-up, status ", status));
    }
    // The other ports are written before the gRPC port file.
    const int port = ReadPortFile(port_file);
    if (port > 0) {
      return std::unique_ptr<BrokerProcess>(
          new BrokerProcess(pid, port, ReadPortFile(metrics_port_file),
                            ReadPortFile(health_port_file)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return absl::DeadlineExceededError("broker did not report its port");
}

BrokerProcess::~BrokerProcess() {
  if (!reaped_) Kill();
}

std::string BrokerProcess::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

void BrokerProcess::Kill() {
  if (reaped_) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  reaped_ = true;
}

absl::StatusOr<int> BrokerProcess::Terminate() {
  if (reaped_) return absl::FailedPreconditionError("already stopped");
  kill(pid_, SIGTERM);
  reaped_ = true;
  return WaitForExit(pid_);
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv_in, const std::string& stdout_path,
    const std::string& stderr_path) {
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv = ToArgv(args);
  const pid_t test_pid = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    DieWithTest(test_pid);
    int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0 || err < 0) _exit(126);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid));
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void ChildProcess::Signal(int signal_number) {
  if (!reaped_) kill(pid_, signal_number);
}

absl::StatusOr<int> ChildProcess::Wait() {
  if (reaped_) return absl::FailedPreconditionError("already reaped");
  reaped_ = true;
  return WaitForExit(pid_);
}

bool WaitForFileToContain(const std::string& path, const std::string& text,
                          absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  do {
    std::ifstream in(path);
    std::stringstream contents;
    contents << in.rdbuf();
    if (contents.str().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (absl::Now() < deadline);
  return false;
}

absl::StatusOr<CommandResult> RunCommand(
    const std::vector<std::string>& argv_in) {
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv = ToArgv(args);
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError("pipe failed");
  }
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  CommandResult result;
  // Drain stderr on a thread so neither pipe can fill and block the child.
  std::thread err_reader([&] { result.err = ReadAll(err_pipe[0]); });
  result.out = ReadAll(out_pipe[0]);
  err_reader.join();
  close(out_pipe[0]);
  close(err_pipe[0]);
  absl::StatusOr<int> exit_code = WaitForExit(pid);
  if (!exit_code.ok()) return exit_code.status();
  result.exit_code = *exit_code;
  return result;
}

}  // namespace referral::testing
