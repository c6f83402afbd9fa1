// The referral_cli subcommands: what each accepts, how it calls the broker
// and how it prints the result. main() only parses flags into CliOptions
// and picks the command, so that tests can run every command against an
// in-process fake broker and adding flags (TLS) touches main() alone. The
// commands live by audience in agency_commands.cc, triage_commands.cc,
// ops_commands.cc and admin_commands.cc, over the typed client
// (broker_client.h); this unit holds the table, the usage text and the
// checks common to all.
//
// Exit codes: 0 success; 1 the broker (or the connection to it) returned an
// error, printed as its status code name and message; 2 a usage or local
// input error (unknown command, missing flag, unreadable or invalid file).
// A few commands also exit 1 for a bad answer that is not an RPC error:
// audit-verify (a broken chain) and health (anything but SERVING).
//
// `stats --watch` refreshes the figures every watch_interval until
// interrupted (or watch_count refreshes). A refresh that fails prints the
// error on stderr like a single call would, and the watch goes on: a
// broker restart should not end the ops screen. The exit code is that of
// the last refresh that completed (0, or 1 when it failed); an interrupted
// refresh does not count, so Ctrl-C on a healthy watch exits 0.
#ifndef REFERRAL_CLIENTS_CLI_COMMANDS_H_
#define REFERRAL_CLIENTS_CLI_COMMANDS_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "call_canceller.h"

namespace referral::clients {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRpcError = 1;
inline constexpr int kExitUsage = 2;

// The values of the subcommand flags (the connection flags go into
// ChannelOptions instead).
struct CliOptions {
  bool json = false;
  absl::Duration timeout = absl::Seconds(30);  // per unary call
  std::string idempotency_key;
  std::string agency;
  int page_size = 0;  // 0: the broker's default
  std::string page_token;
  int max = 1;
  int lease_seconds = 0;
  std::string worker;
  std::string token;
  std::string reason;
  std::string decision;
  std::string rationale;
  std::string feedback;
  absl::Duration since = absl::Hours(24);  // audit-export: how far back
  int limit = 0;                           // audit-export: 0 = default
  // False when --timeout was left at its default: health then uses a
  // shorter deadline of its own (kHealthTimeout) so a probe fails fast.
  bool timeout_given = false;
  // stats: refresh until interrupted, or `watch_count` times (0: no limit).
  bool watch = false;
  absl::Duration watch_interval = absl::Seconds(2);
  int watch_count = 0;
  uint32_t backup_id = 0;  // backup verify; 0: not given
  std::string service;     // health: "" is the broker as a whole
};

// The deadline of a health check when --timeout is not given: well inside
// a container probe's own timeout (Docker's default is 30s).
inline constexpr absl::Duration kHealthTimeout = absl::Seconds(5);

struct CliEnv {
  std::shared_ptr<grpc::ChannelInterface> channel;
  CliOptions options;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  // stats --watch clears the screen between refreshes only on a terminal;
  // piped output gets a separator line instead.
  bool out_is_terminal = false;
  // Optional: lets a signal handler thread end a long-running command
  // (watch, stats --watch) cleanly: a bound call finishes as CANCELLED, a
  // wait between refreshes ends at once, and the command exits as
  // documented above.
  CallCanceller* canceller = nullptr;
};

struct CommandSpec {
  std::string name;       // "submit", "dead-letters"
  std::string group;      // "agencies", "triage", "ops" or "admin"
  std::string arguments;  // positional arguments, e.g. "FILE|-"
  std::string summary;
  std::vector<std::string> flags;           // subcommand flags it accepts
  std::vector<std::string> required_flags;  // a subset of `flags`
  int min_args = 0;
  int max_args = 0;
  int (*run)(const CliEnv& env, const std::vector<std::string>& args) = nullptr;
};

// Every subcommand, grouped and in the order the usage text lists them.
const std::vector<CommandSpec>& Commands();
const CommandSpec* FindCommand(absl::string_view name);
// "agencies", "triage", "ops", "admin": optional words before a command
// name.
bool IsCommandGroup(absl::string_view word);

// The full usage text (ends with a newline).
std::string UsageText(absl::string_view program);
// "usage: referral_cli decide REFERRAL_ID --token=T ..." for one command.
std::string CommandUsage(absl::string_view program, const CommandSpec& spec);

// Checks the argument count and the required flags (by the names given on
// the command line), then runs the command. Returns the exit code.
int RunCommand(const CommandSpec& spec, const CliEnv& env,
               const std::vector<std::string>& args,
               const std::vector<std::string>& given_flags);

// A random version-4 UUID ("3f2b...-4...-a..."): unique enough that two
// submissions never share a key by accident. Used when --idempotency_key
// is not given; the CLI prints it so a retry can reuse it.
std::string NewIdempotencyKey();

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_CLI_COMMANDS_H_
