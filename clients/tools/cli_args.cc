#include "cli_args.h"

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace referral::clients {

absl::StatusOr<SplitArgs> SplitCommandLine(const std::vector<std::string>& args,
                                           const FlagKindLookup& lookup) {
  SplitArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      out.positional.insert(out.positional.end(), args.begin() + i + 1,
                            args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      out.positional.push_back(arg);  // includes "-" for stdin
      continue;
    }
    absl::string_view body = arg;
    body.remove_prefix(absl::StartsWith(body, "--") ? 2 : 1);
    const size_t eq = body.find('=');
    const absl::string_view name = body.substr(0, eq);
    const bool has_value = eq != absl::string_view::npos;
    if (name == "help" || name == "h") {
      out.help = true;
      continue;
    }
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed flag \"", absl::CHexEscape(arg), "\""));
    }
    const std::optional<bool> is_bool = lookup(name);
    if (is_bool.has_value()) {
      FlagArg flag{std::string(name), ""};
      if (has_value) {
        flag.value = std::string(body.substr(eq + 1));
      } else if (*is_bool) {
        flag.value = "true";
      } else if (i + 1 < args.size()) {
        flag.value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "flag --", name, " needs a value (--", name, "=VALUE)"));
      }
      out.flags.push_back(std::move(flag));
      continue;
    }
    if (absl::StartsWith(name, "no") && !has_value) {
      const absl::string_view positive = name.substr(2);
      const std::optional<bool> positive_is_bool = lookup(positive);
      if (positive_is_bool.value_or(false)) {
        out.flags.push_back({std::string(positive), "false"});
        continue;
      }
    }
    return absl::InvalidArgumentError(
        absl::StrCat("unknown flag --", absl::CHexEscape(name)));
  }
  return out;
}

}  // namespace referral::clients
