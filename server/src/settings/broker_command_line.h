// referral_broker's command line, read by reflection: every field of
// BrokerSettings is a flag of the same name, and so is every field of
// BrokerCommand (--config_file, --check-config, --settings_table, --help).
//
// Why not absl's flags: Abseil 20220623 declares flags only at compile time
// (ABSL_FLAG); declaring one per proto field at run time would mean
// subclassing CommandLineFlag's private virtuals and calling
// flags_internal::RegisterCommandLineFlag, both internal. Splitting argv
// between a parser of ours and absl's would leave --help listing absl's
// flags only, would need absl's internal accessor to tell a flag given on
// the command line from its default, and would let --flagfile smuggle
// settings past our parser. So the broker reads its own command line, in
// the syntax absl's flags accept, and derives --help from the declarations.
#ifndef REFERRAL_SERVER_SETTINGS_BROKER_COMMAND_LINE_H_
#define REFERRAL_SERVER_SETTINGS_BROKER_COMMAND_LINE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/v1/broker_settings.pb.h"

namespace referral::server {

// What the command line gave, and only that: has_<name>() says whether a
// flag was given (a flag given with its default value still counts, so it
// still overrides the settings file).
struct BrokerCommandLine {
  config::v1::BrokerCommand command;
  config::v1::BrokerSettings settings;
};

// Reads `args` (argv without the program name) as absl's flags would:
// --name=value and -name=value; --name value (not for true/false flags);
// --name, --noname and --name=false for true/false flags; `--` ends the
// flags. A "-" in a name reads as "_" (--check-config). A flag given twice
// takes its last value. INVALID_ARGUMENT naming the flag for an unknown
// flag, a missing value or a value not of the flag's kind, and for an
// argument that is not a flag (the broker takes none).
absl::StatusOr<BrokerCommandLine> ParseBrokerCommandLine(
    const std::vector<std::string>& args);

// The text of --help: how to run the broker, then each flag with its
// default and meaning from its declaration.
std::string BrokerUsage();

}  // namespace referral::server

#endif  // REFERRAL_SERVER_SETTINGS_BROKER_COMMAND_LINE_H_
