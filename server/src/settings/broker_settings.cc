#include "settings/broker_settings.h"

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "base/json_log.h"
#include "base/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "rules/routing_table.h"
#include "security/principals.h"
#include "settings/text_config.h"

namespace referral::server {
namespace {

using config::v1::BrokerSettings;
using google::protobuf::FieldDescriptor;
using google::protobuf::Reflection;

// Debian's Abseil has its own string_view, distinct from std's.
absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

constexpr absl::Duration kDay = absl::Hours(24);

// Sets `field` of `settings` from a flag's text as absl prints it ("true",
// "1800", "500", a string as is). False when the text is not a value of the
// field's type.
bool SetFromText(const FieldDescriptor* field, const std::string& text,
                 BrokerSettings* settings) {
  const Reflection* reflection = settings->GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      reflection->SetString(settings, field, text);
      return true;
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool value = false;
      if (!absl::SimpleAtob(text, &value)) return false;
      reflection->SetBool(settings, field, value);
      return true;
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t value = 0;
      if (!absl::SimpleAtoi(text, &value)) return false;
      reflection->SetInt32(settings, field, value);
      return true;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double value = 0;
      if (!absl::SimpleAtod(text, &value)) return false;
      reflection->SetDouble(settings, field, value);
      return true;
    }
    default:
      // broker_settings.proto has only the types above.
      return false;
  }
}

void CopyField(const FieldDescriptor* field, const BrokerSettings& from,
               BrokerSettings* to) {
  const Reflection* reflection = from.GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      reflection->SetString(to, field, reflection->GetString(from, field));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      reflection->SetBool(to, field, reflection->GetBool(from, field));
      break;
    case FieldDescriptor::CPPTYPE_INT32:
      reflection->SetInt32(to, field, reflection->GetInt32(from, field));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      reflection->SetDouble(to, field, reflection->GetDouble(from, field));
      break;
    default:
      break;
  }
}

std::string Location(std::string_view source, ConfigLocation at) {
  return absl::StrCat(Absl(source), ":", at.line + 1, ":", at.column + 1);
}

// The directory a "port file" is written in must exist: the broker writes
// it only after it has opened the store and started serving, which is too
// late to find out.
void CheckWritableFileDirectory(const std::string& setting,
                                const std::string& path,
                                std::vector<SettingProblem>& problems) {
  if (path.empty()) return;
  const std::filesystem::path parent =
      std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    problems.push_back(
        {setting, absl::StrCat("directory ", dir, " does not exist")});
  }
}

}  // namespace

// --- Defaults and conversion ----------------------------------------------

BrokerSettings SettingsFromOptions(const BrokerOptions& options) {
  BrokerSettings settings;
  settings.set_listen(options.listen_address);
  settings.set_metrics_listen(options.metrics_listen);
  settings.set_health_listen(options.health_listen);
  settings.set_data_dir(options.data_dir);
  settings.set_backup_dir(options.backup_dir);
  settings.set_encryption_key_file(options.encryption_key_file);
  settings.set_tls_certificate_file(options.tls_certificate_file);
  settings.set_tls_private_key_file(options.tls_private_key_file);
  settings.set_tls_client_ca_file(options.tls_client_ca_file);
  settings.set_principals_file(options.principals_file);
  settings.set_insecure_development(options.insecure_development);
  settings.set_routing_file(options.routing_file);
  settings.set_calendar_file(options.calendar_file);
  settings.set_lease_seconds(absl::ToInt64Seconds(options.default_lease));
  settings.set_max_lease_seconds(absl::ToInt64Seconds(options.max_lease));
  settings.set_max_deliveries(options.max_deliveries);
  settings.set_lease_check_ms(
      absl::ToInt64Milliseconds(options.lease_check_interval));
  settings.set_repeated_concern_days(options.repeated_concern_window / kDay);
  settings.set_repeated_concern_threshold(options.repeated_concern_threshold);
  settings.set_outcome_ack_overdue_hours(
      absl::ToInt64Hours(options.outcome_ack_overdue));
  settings.set_decision_stats_days(options.decision_stats_window / kDay);
  settings.set_rate_limit_per_second(options.rate_limit_per_second);
  settings.set_rate_limit_burst(options.rate_limit_burst);
  settings.set_max_message_bytes(options.max_message_bytes);
  settings.set_shutdown_grace_seconds(
      absl::ToInt64Seconds(options.shutdown_grace));
  settings.set_shutdown_drain_seconds(
      absl::ToInt64Seconds(options.shutdown_drain));
  return settings;
}

BrokerSettings DefaultBrokerSettings() {
  BrokerSettings settings = SettingsFromOptions(BrokerOptions());
  // A broker started in-process serves no metrics unless asked; the binary
  // does, on loopback, so that a fresh install can be scraped locally.
  settings.set_metrics_listen("127.0.0.1:9464");
  settings.set_log_level("info");
  settings.set_port_file("");
  settings.set_metrics_port_file("");
  settings.set_health_port_file("");
  return settings;
}

BrokerOptions ToBrokerOptions(const BrokerSettings& s) {
  BrokerOptions options;
  if (s.has_listen()) options.listen_address = s.listen();
  if (s.has_metrics_listen()) options.metrics_listen = s.metrics_listen();
  if (s.has_health_listen()) options.health_listen = s.health_listen();
  if (s.has_data_dir()) options.data_dir = s.data_dir();
  if (s.has_backup_dir()) options.backup_dir = s.backup_dir();
  if (s.has_encryption_key_file()) {
    options.encryption_key_file = s.encryption_key_file();
  }
  if (s.has_tls_certificate_file()) {
    options.tls_certificate_file = s.tls_certificate_file();
  }
  if (s.has_tls_private_key_file()) {
    options.tls_private_key_file = s.tls_private_key_file();
  }
  if (s.has_tls_client_ca_file()) {
    options.tls_client_ca_file = s.tls_client_ca_file();
  }
  if (s.has_principals_file()) options.principals_file = s.principals_file();
  if (s.has_insecure_development()) {
    options.insecure_development = s.insecure_development();
  }
  if (s.has_routing_file()) options.routing_file = s.routing_file();
  if (s.has_calendar_file()) options.calendar_file = s.calendar_file();
  if (s.has_lease_seconds()) {
    options.default_lease = absl::Seconds(s.lease_seconds());
  }
  if (s.has_max_lease_seconds()) {
    options.max_lease = absl::Seconds(s.max_lease_seconds());
  }
  if (s.has_max_deliveries()) options.max_deliveries = s.max_deliveries();
  if (s.has_lease_check_ms()) {
    options.lease_check_interval = absl::Milliseconds(s.lease_check_ms());
  }
  if (s.has_repeated_concern_days()) {
    options.repeated_concern_window = kDay * s.repeated_concern_days();
  }
  if (s.has_repeated_concern_threshold()) {
    options.repeated_concern_threshold = s.repeated_concern_threshold();
  }
  if (s.has_outcome_ack_overdue_hours()) {
    options.outcome_ack_overdue = absl::Hours(s.outcome_ack_overdue_hours());
  }
  if (s.has_decision_stats_days()) {
    options.decision_stats_window = kDay * s.decision_stats_days();
  }
  if (s.has_rate_limit_per_second()) {
    options.rate_limit_per_second = s.rate_limit_per_second();
  }
  if (s.has_rate_limit_burst()) options.rate_limit_burst = s.rate_limit_burst();
  if (s.has_max_message_bytes()) {
    options.max_message_bytes = s.max_message_bytes();
  }
  if (s.has_shutdown_grace_seconds()) {
    options.shutdown_grace = absl::Seconds(s.shutdown_grace_seconds());
  }
  if (s.has_shutdown_drain_seconds()) {
    options.shutdown_drain = absl::Seconds(s.shutdown_drain_seconds());
  }
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
    std::string_view config_file, const SettingFlagLookup& flags) {
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
  const google::protobuf::Descriptor* type = BrokerSettings::descriptor();
  const Reflection* reflection = file.GetReflection();
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    const std::optional<SettingFlag> flag = flags(field->name());
    if (!flag.has_value()) {
      return absl::InternalError(
          absl::StrCat("setting ", field->name(), " has no command-line flag"));
    }
    if (!flag->given && reflection->HasField(file, field)) {
      CopyField(field, file, &resolved.settings);
      resolved.from_file[field->name()] = locations[field->name()];
    } else if (!SetFromText(field, flag->value, &resolved.settings)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", field->name(), ": not a valid value for this setting"));
    }
  }
  return resolved;
}

// --- Checking -------------------------------------------------------------

absl::Status CheckBrokerSettings(const ResolvedBrokerSettings& resolved) {
  const BrokerSettings& settings = resolved.settings;
  std::vector<SettingProblem> problems;
  CheckBrokerOptions(ToBrokerOptions(settings), [&](SettingProblem problem) {
    problems.push_back(std::move(problem));
  });
  LogLevel level;
  if (!ParseLogLevel(settings.log_level(), &level)) {
    problems.push_back(
        {"log_level", absl::StrCat("must be debug, info, warning or error "
                                   "(got \"",
                                   settings.log_level(), "\")")});
  }
  CheckWritableFileDirectory("port_file", settings.port_file(), problems);
  CheckWritableFileDirectory("metrics_port_file", settings.metrics_port_file(),
                             problems);
  CheckWritableFileDirectory("health_port_file", settings.health_port_file(),
                             problems);
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
