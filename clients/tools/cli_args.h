// Splits a command line into positional arguments and flag assignments
// before any flag is set. referral_cli does its own splitting (rather than
// absl::ParseCommandLine, which exits with status 1) so that every usage
// mistake can exit with status 2 and a message saying what to fix, and so
// that it can tell which flags were actually given to a subcommand.
#ifndef REFERRAL_CLIENTS_CLI_ARGS_H_
#define REFERRAL_CLIENTS_CLI_ARGS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace referral::clients {

struct FlagArg {
  std::string name;   // without dashes
  std::string value;  // "true"/"false" for a bare or --no boolean flag

  bool operator==(const FlagArg&) const = default;
};

struct SplitArgs {
  std::vector<std::string> positional;
  std::vector<FlagArg> flags;  // in command-line order
  bool help = false;           // -h, --help or -help was given
};

// For a flag name: nullopt when no such flag exists, otherwise whether it
// is a boolean flag (which takes no separate value argument).
using FlagKindLookup =
    std::function<std::optional<bool>(absl::string_view name)>;

// Accepts --name=value, -name=value, --name value (non-boolean flags),
// --name and --noname (boolean flags), "-" as a positional argument (stdin)
// and "--" to end flags. `args` excludes the program name. INVALID_ARGUMENT
// for an unknown flag or a missing value.
absl::StatusOr<SplitArgs> SplitCommandLine(const std::vector<std::string>& args,
                                           const FlagKindLookup& lookup);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_CLI_ARGS_H_
