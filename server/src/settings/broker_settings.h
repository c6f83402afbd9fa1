// The broker's settings (config::v1::BrokerSettings): read from the settings
// file (--config_file, protobuf text format), overridden by the flags given
// on the command line (broker_command_line.h), defaulted from their
// declarations (declared_settings.h), and checked. main.cc only plumbs;
// everything it decides about configuration is here, so it is tested
// in-process. BrokerOptions (server/broker.h) holds the settings as they
// are: there is no conversion to keep in step.
#ifndef REFERRAL_SERVER_BROKER_SETTINGS_H_
#define REFERRAL_SERVER_BROKER_SETTINGS_H_

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/broker.h"
#include "server/v1/broker_settings.pb.h"

namespace referral::server {

// --- Defaults -------------------------------------------------------------

// Every setting at its declared default (broker_settings.proto). A broker
// started in-process starts from InProcessBrokerSettings() (server/broker.h)
// instead, which serves no metrics unless asked.
config::v1::BrokerSettings DefaultBrokerSettings();

// `options` with each setting it leaves absent at its in-process default,
// as Broker::Start and Broker::CheckOptions read them.
BrokerOptions WithDefaultSettings(BrokerOptions options);

// True for settings that are paths (names ending in "_file" or "_dir").
bool IsPathSetting(std::string_view name);

// --- Loading --------------------------------------------------------------

// The settings in force, and where the settings file set each of them.
struct ResolvedBrokerSettings {
  // Every field set.
  config::v1::BrokerSettings settings;
  // The settings file, "" when none was given.
  std::string config_file;
  // Setting name -> "<config_file>:<line>:<column>" for each value taken
  // from the file (not those a flag overrode).
  std::map<std::string, std::string, std::less<>> from_file;
};

// Parses a settings file's text. Syntax errors (including unknown settings
// and a setting written twice) are INVALID_ARGUMENT
// "<source>:<line>:<column>: <reason>". Relative paths are resolved against
// the directory of `source` (see broker_settings.proto). When `locations`
// is not null it receives "<source>:<line>:<column>" of each setting.
absl::StatusOr<config::v1::BrokerSettings> ParseBrokerSettingsFile(
    std::string_view text, std::string_view source,
    std::map<std::string, std::string, std::less<>>* locations = nullptr);

// Each setting from `flags` if present there (given on the command line),
// else from `config_file` (none when empty) if written there, else its
// declared default. INVALID_ARGUMENT for a file that cannot be read or
// parsed (file:line:column).
absl::StatusOr<ResolvedBrokerSettings> ResolveBrokerSettings(
    std::string_view config_file, const config::v1::BrokerSettings& flags);

// --- Checking -------------------------------------------------------------

// A problem found by CheckBrokerOptions: the setting, what is wrong, and
// whether it is about the contents of the file the setting names (a routing
// file's line 12) rather than the value itself (a negative lease, a path
// that does not exist).
struct SettingProblem {
  std::string setting;
  std::string problem;
  bool in_named_file = false;
};

// Every check of Broker::CheckOptions (which joins these as
// "<setting>: <problem>"), reported one problem at a time so that
// CheckBrokerSettings can say where in the settings file a bad value was
// written: the declared ranges of every setting, then what cannot be
// declared (addresses, directories, key, TLS, principals, rules, log level,
// port files). Opens no store and binds no port; reads the files the
// settings name. Implemented in broker_options_check.cc.
void CheckBrokerOptions(const BrokerOptions& options,
                        absl::FunctionRef<void(SettingProblem)> report);

// CheckBrokerOptions on the resolved settings. INVALID_ARGUMENT listing
// every problem,
// joined with "; ", each "<setting>: <problem>", prefixed with
// "<file>:<line>:<column>: " when the bad value was written in the settings
// file.
absl::Status CheckBrokerSettings(const ResolvedBrokerSettings& resolved);

// What --check-config prints after "config OK": one "name: value" line each
// for the config file, listen addresses, data and backup directories, TLS,
// encryption at rest, and the queues in the routing file. Loads the routing
// file (the settings should have passed CheckBrokerSettings).
absl::StatusOr<std::string> DescribeBrokerSettings(
    const ResolvedBrokerSettings& resolved);

// --- Shared with broker.cc ------------------------------------------------

// The routing or calendar file the broker loads: `given`, or the shipped
// `name` under server/config/ when `given` is empty.
std::string RulesFileOrDefault(const std::string& given,
                               const std::string& name);

// "127.0.0.1:50051", "localhost:0", "[::1]:50051": the host is loopback.
bool IsLoopbackListenAddress(std::string_view address);

}  // namespace referral::server

#endif  // REFERRAL_SERVER_BROKER_SETTINGS_H_
