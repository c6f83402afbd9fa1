// What the referral_cli command files (agency_commands.cc,
// triage_commands.cc, ops_commands.cc, admin_commands.cc) share: each
// file's table of commands, and the one way a command calls the broker
// and answers (Report), so that no command repeats it.
#ifndef REFERRAL_CLIENTS_CLI_COMMAND_KIT_H_
#define REFERRAL_CLIENTS_CLI_COMMAND_KIT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker_client.h"
#include "cli_commands.h"
#include "cli_format.h"

namespace referral::clients {

inline constexpr absl::string_view kProgram = "referral_cli";

// Each audience's commands, in the order the usage text lists them.
const std::vector<CommandSpec>& AgencyCommands();
const std::vector<CommandSpec>& TriageCommands();
const std::vector<CommandSpec>& OpsCommands();
const std::vector<CommandSpec>& AdminCommands();

// "referral_cli <command>: <message>" on stderr; returns kExitUsage. Every
// failure message names the command, so a script's log says which step
// failed.
int UsageError(const CliEnv& env, absl::string_view command,
               absl::string_view message);
// "referral_cli <command>: <CODE>: <message>" on stderr; returns
// kExitRpcError.
int RpcError(const CliEnv& env, absl::string_view command,
             const absl::Status& status);

// "page <what>=<count> next_page_token=<token>" (no newline).
std::string PageLine(absl::string_view what, int count,
                     absl::string_view next_page_token);

// The client and a call with the command line's deadline.
inline BrokerClient Client(const CliEnv& env) {
  return BrokerClient(env.channel);
}
inline CallOptions Unary(const CliEnv& env) {
  CallOptions options;
  options.timeout = env.options.timeout;
  return options;
}

// How every command answers: an error is printed (exit 1); with --json the
// response is printed as one line of JSON; otherwise `print(response)`
// prints it for people. Returns the exit code.
template <typename Response, typename Print>
int Report(const CliEnv& env, absl::string_view command,
           const absl::StatusOr<Response>& response, Print print) {
  if (!response.ok()) return RpcError(env, command, response.status());
  if (env.options.json) {
    *env.out << ToJson(*response) << "\n";
  } else {
    print(*response);
  }
  return kExitOk;
}

// Report for a response shown as one line (or block): `line(response)`.
template <typename Response, typename Line>
int ReportLine(const CliEnv& env, absl::string_view command,
               const absl::StatusOr<Response>& response, Line line) {
  return Report(env, command, response,
                [&](const Response& r) { *env.out << line(r) << "\n"; });
}

// A request about the referral the command names (args[0]) under the lease
// of --token.
template <typename Request>
Request Leased(const CliEnv& env, const std::vector<std::string>& args) {
  Request request;
  request.set_referral_id(args[0]);
  request.set_lease_token(env.options.token);
  return request;
}

// One line per item, `line(item)` each.
template <typename Items, typename Line>
void PrintLines(const CliEnv& env, const Items& items, Line line) {
  for (const auto& item : items) *env.out << line(item) << "\n";
}

// A page of a list: one line per item, then "page <what>=<count>
// next_page_token=<token>" and `more` (e.g. " ready=3").
template <typename Items, typename Line>
void PrintPage(const CliEnv& env, const Items& items, Line line,
               absl::string_view what, absl::string_view next_page_token,
               absl::string_view more = "") {
  PrintLines(env, items, line);
  *env.out << PageLine(what, items.size(), next_page_token) << more << "\n";
}

// A request for a page of the queue the command names (args[0]), the page
// the command line asks for (--page_size, --page_token).
template <typename Request>
Request QueuePage(const CliEnv& env, const std::vector<std::string>& args) {
  Request request;
  request.set_queue(args[0]);
  request.mutable_page()->set_page_size(env.options.page_size);
  request.mutable_page()->set_page_token(env.options.page_token);
  return request;
}

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_CLI_COMMAND_KIT_H_
