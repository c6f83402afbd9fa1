// Runs one referral_cli command in process, as main() would after parsing
// the command line, and captures what it prints: for the CLI's tests.
// Header-only, like fake_broker.h.
#ifndef REFERRAL_TESTS_CLIENTS_CLI_RUNNER_H_
#define REFERRAL_TESTS_CLIENTS_CLI_RUNNER_H_

#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "broker_channel.h"
#include "cli_commands.h"

namespace referral::clients {

// A plaintext channel to a test server at `address`.
inline std::shared_ptr<grpc::Channel> ChannelTo(const std::string& address) {
  ChannelOptions options;
  options.address = address;
  return *ConnectToBroker(options);
}

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

// `given`: the flags as if given on the command line. `watched_out`, when
// set, receives stdout instead of CliResult::out.
inline CliResult RunCli(
    std::shared_ptr<grpc::ChannelInterface> channel, const std::string& command,
    const std::vector<std::string>& args, const CliOptions& options,
    const std::vector<std::string>& given, bool out_is_terminal = false,
    CallCanceller* canceller = nullptr, std::ostream* watched_out = nullptr) {
  std::ostringstream out, err;
  CliEnv env;
  env.channel = std::move(channel);
  env.options = options;
  env.out = watched_out != nullptr ? watched_out : &out;
  env.err = &err;
  env.out_is_terminal = out_is_terminal;
  env.canceller = canceller;
  const CommandSpec* spec = FindCommand(command);
  EXPECT_NE(spec, nullptr) << command;
  CliResult result;
  if (spec == nullptr) return result;
  result.code = RunCommand(*spec, env, args, given);
  result.out = out.str();
  result.err = err.str();
  return result;
}

}  // namespace referral::clients

#endif  // REFERRAL_TESTS_CLIENTS_CLI_RUNNER_H_
