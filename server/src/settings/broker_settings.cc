#include "settings/broker_settings.h"

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "base/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "rules/routing_table.h"
#include "security/principals.h"
#include "settings/declared_settings.h"
#include "settings/text_config.h"

namespace referral::server {
namespace {

using config::v1::BrokerSettings;
using google::protobuf::FieldDescriptor;
using google::protobuf::Reflection;

// Debian's Abseil has its own string_view, distinct from std's.
absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

std::string Location(std::string_view source, ConfigLocation at) {
  return absl::StrCat(Absl(source), ":", at.line + 1, ":", at.column + 1);
}

}  // namespace

// --- Defaults -------------------------------------------------------------

BrokerSettings DefaultBrokerSettings() {
  // Read once: every BrokerOptions starts from these.
  static const BrokerSettings* const defaults = [] {
    auto* settings = new BrokerSettings();
    // A default that does not parse is a mistake in the .proto; the tests
    // (EverySettingDeclaresADefaultOfItsTypeAndHelp) name it.
    SetDeclaredDefaults(settings);
    return settings;
  }();
  return *defaults;
}

BrokerSettings InProcessBrokerSettings() {
  BrokerSettings settings = DefaultBrokerSettings();
  // The binary serves metrics on loopback so that a fresh install can be
  // scraped locally; brokers started in-process (tests, many at once)
  // would collide on its port.
  settings.set_metrics_listen("");
  return settings;
}

BrokerOptions WithDefaultSettings(BrokerOptions options) {
  BrokerSettings settings = InProcessBrokerSettings();
  settings.MergeFrom(options.settings);
  options.settings = std::move(settings);
  return options;
}

bool IsPathSetting(std::string_view name) {
  return name.ends_with("_file") || name.ends_with("_dir");
}

// --- Loading --------------------------------------------------------------

absl::StatusOr<BrokerSettings> ParseBrokerSettingsFile(
    std::string_view text, std::string_view source,
    std::map<std::string, std::string, std::less<>>* locations) {
  BrokerSettings settings;
  ConfigParseTree tree;
  RETURN_IF_ERROR(ParseTextConfig(text, source, &settings, &tree));
  const ConfigLocator locator(&tree, BrokerSettings::descriptor());
  const std::filesystem::path base =
      std::filesystem::path(std::string(source)).parent_path();
  const Reflection* reflection = settings.GetReflection();
  const google::protobuf::Descriptor* type = BrokerSettings::descriptor();
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    if (!reflection->HasField(settings, field)) continue;
    if (locations != nullptr) {
      (*locations)[field->name()] =
          Location(source, locator.Field(field->name().c_str()));
    }
    if (!IsPathSetting(field->name())) continue;
    const std::filesystem::path path(reflection->GetString(settings, field));
    // Empty means "off" or "the default", not "the file's directory".
    if (path.empty() || path.is_absolute() || base.empty()) continue;
    reflection->SetString(&settings, field,
                          (base / path).lexically_normal().string());
  }
  return settings;
}

absl::StatusOr<ResolvedBrokerSettings> ResolveBrokerSettings(
    std::string_view config_file, const BrokerSettings& flags) {
  ResolvedBrokerSettings resolved;
  resolved.config_file = std::string(config_file);
  BrokerSettings file;
  std::map<std::string, std::string, std::less<>> locations;
  if (!config_file.empty()) {
    absl::StatusOr<std::string> text = ReadConfigFile(config_file);
    if (!text.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("config_file: ", text.status().message()));
    }
    ASSIGN_OR_RETURN(file,
                     ParseBrokerSettingsFile(*text, config_file, &locations));
  }
  // Merging sets only the fields present: the file's over the defaults,
  // then the command line's over both.
  resolved.settings = DefaultBrokerSettings();
  resolved.settings.MergeFrom(file);
  resolved.settings.MergeFrom(flags);
  const Reflection* reflection = flags.GetReflection();
  for (const auto& [name, location] : locations) {
    const FieldDescriptor* field =
        BrokerSettings::descriptor()->FindFieldByName(name);
    if (!reflection->HasField(flags, field)) {
      resolved.from_file[name] = location;
    }
  }
  return resolved;
}

// --- Checking -------------------------------------------------------------

absl::Status CheckBrokerSettings(const ResolvedBrokerSettings& resolved) {
  std::vector<SettingProblem> problems;
  BrokerOptions options;
  options.settings = resolved.settings;
  CheckBrokerOptions(options, [&](SettingProblem problem) {
    problems.push_back(std::move(problem));
  });
  if (problems.empty()) return absl::OkStatus();
  std::vector<std::string> errors;
  for (const SettingProblem& problem : problems) {
    std::string error;
    const auto where = resolved.from_file.find(problem.setting);
    // A routing file's own errors carry their own file:line:column; the
    // line in the settings file that names it would only be noise.
    if (!problem.in_named_file && where != resolved.from_file.end()) {
      error = absl::StrCat(where->second, ": ");
    }
    absl::StrAppend(&error, problem.setting, ": ", problem.problem);
    errors.push_back(std::move(error));
  }
  return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
}

absl::StatusOr<std::string> DescribeBrokerSettings(
    const ResolvedBrokerSettings& resolved) {
  const BrokerSettings& s = resolved.settings;
  const auto or_off = [](const std::string& value, std::string_view off) {
    return value.empty() ? std::string(off) : value;
  };
  std::vector<std::string> lines;
  lines.push_back(
      absl::StrCat("config_file: ",
                   or_off(resolved.config_file, "(none: flags and defaults)")));
  lines.push_back(absl::StrCat("listen: ", s.listen()));
  lines.push_back(
      absl::StrCat("metrics_listen: ", or_off(s.metrics_listen(), "off")));
  lines.push_back(
      absl::StrCat("health_listen: ", or_off(s.health_listen(), "off")));
  lines.push_back(absl::StrCat("data_dir: ", s.data_dir()));
  lines.push_back(absl::StrCat(
      "backup_dir: ", or_off(s.backup_dir(), "off (backups refused)")));
  if (s.tls_certificate_file().empty()) {
    lines.push_back(
        "tls: off (insecure_development: plaintext, no authentication)");
  } else {
    ASSIGN_OR_RETURN(std::unique_ptr<PrincipalDirectory> principals,
                     PrincipalDirectory::LoadFile(s.principals_file()));
    lines.push_back(absl::StrCat("tls: on (client certificates required, ",
                                 principals->principals().size(),
                                 " principals)"));
  }
  lines.push_back(absl::StrCat("encryption_at_rest: ",
                               s.encryption_key_file().empty() ? "off" : "on"));
  const std::string routing_file =
      RulesFileOrDefault(s.routing_file(), "routing.txtpb");
  ASSIGN_OR_RETURN(std::unique_ptr<RoutingTable> routing,
                   RoutingTable::LoadFile(routing_file));
  lines.push_back(absl::StrCat("routing_file: ", routing_file));
  lines.push_back(
      absl::StrCat("calendar_file: ",
                   RulesFileOrDefault(s.calendar_file(), "calendar.txtpb")));
  lines.push_back(
      absl::StrCat("queues: ", absl::StrJoin(routing->queue_names(), ", ")));
  return absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}

// --- Shared with broker.cc ------------------------------------------------

std::string RulesFileOrDefault(const std::string& given,
                               const std::string& name) {
  return given.empty() ? absl::StrCat(REFERRAL_CONFIG_DIR, "/", name) : given;
}

bool IsLoopbackListenAddress(std::string_view address) {
  const size_t colon = address.rfind(':');
  const std::string_view host =
      colon == std::string_view::npos ? address : address.substr(0, colon);
  return host == "localhost" || host == "[::1]" || host.starts_with("127.");
}

}  // namespace referral::server
