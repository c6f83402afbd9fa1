// Specification of the broker's settings: the settings file (errors located
// file:line:column, relative paths taken from the file's directory), how
// defaults, the file and command-line flags combine, every setting reaching
// BrokerOptions, Broker::CheckOptions naming the setting and the problem for
// each bad value, and the documentation (proto comments, the settings table
// of docs/configuration.md) agreeing with the defaults the code uses.
#include "settings/broker_settings.h"

#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "server/broker.h"
#include "support/broker_process.h"
#include "support/dev_pki.h"

namespace referral::server {
namespace {

using config::v1::BrokerSettings;
using google::protobuf::FieldDescriptor;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using Locations = std::map<std::string, std::string, std::less<>>;

constexpr char kShippedConfig[] = REFERRAL_SOURCE_DIR "/server/config";

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

void WriteFile(
    const std::string& path, const std::string& contents,
    std::filesystem::perms perms = std::filesystem::perms::owner_read |
                                   std::filesystem::perms::owner_write) {
  std::filesystem::create_directories(
      std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::trunc) << contents;
  std::filesystem::permissions(path, perms);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// A setting's value as absl prints a flag of its type ("true", "1800",
// "500", a string as is): what main.cc's flags report.
std::string FlagText(const BrokerSettings& settings,
                     const FieldDescriptor* field) {
  const auto* reflection = settings.GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return reflection->GetString(settings, field);
    case FieldDescriptor::CPPTYPE_BOOL:
      return reflection->GetBool(settings, field) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(reflection->GetInt32(settings, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrCat(reflection->GetDouble(settings, field));
    default:
      ADD_FAILURE() << "unexpected type of " << field->name();
      return "";
  }
}

std::vector<const FieldDescriptor*> AllSettings() {
  std::vector<const FieldDescriptor*> fields;
  const auto* type = BrokerSettings::descriptor();
  for (int i = 0; i < type->field_count(); ++i)
    fields.push_back(type->field(i));
  return fields;
}

// The flags as main.cc declares them: one per setting, defaulting to
// DefaultBrokerSettings(); `given` are those given on the command line.
SettingFlagLookup Flags(std::map<std::string, std::string> given = {}) {
  return [given](const std::string& name) -> std::optional<SettingFlag> {
    if (auto it = given.find(name); it != given.end()) {
      return SettingFlag{it->second, true};
    }
    const FieldDescriptor* field =
        BrokerSettings::descriptor()->FindFieldByName(name);
    if (field == nullptr) return std::nullopt;
    return SettingFlag{FlagText(DefaultBrokerSettings(), field), false};
  };
}

// Options that pass every check without files of their own: development
// mode on loopback with the shipped rules.
BrokerOptions DevelopmentOptions(const referral::testing::TempDir& dir) {
  BrokerOptions options;
  options.insecure_development = true;
  options.data_dir = dir.Sub("data");
  options.metrics_listen = "127.0.0.1:9464";
  return options;
}

std::string CheckError(const BrokerOptions& options) {
  const absl::Status status = Broker::CheckOptions(options);
  EXPECT_FALSE(status.ok()) << "accepted although invalid";
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  return Message(status);
}

// --- Defaults --------------------------------------------------------------

TEST(BrokerSettingsDefaultsTest, EverySettingHasADefault) {
  const BrokerSettings defaults = DefaultBrokerSettings();
  for (const FieldDescriptor* field : AllSettings()) {
    EXPECT_TRUE(defaults.GetReflection()->HasField(defaults, field))
        << field->name();
  }
}

TEST(BrokerSettingsDefaultsTest, AreThoseOfBrokerOptionsExceptMetricsOn) {
  BrokerSettings expected = SettingsFromOptions(BrokerOptions());
  // The binary serves metrics on loopback; an embedded broker only if asked.
  EXPECT_EQ(expected.metrics_listen(), "");
  expected.set_metrics_listen("127.0.0.1:9464");
  expected.set_log_level("info");
  expected.set_port_file("");
  expected.set_metrics_port_file("");
  expected.set_health_port_file("");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
      DefaultBrokerSettings(), expected))
      << DefaultBrokerSettings().DebugString();
}

TEST(BrokerSettingsDefaultsTest, AreTheDefaultsTheBriefAndReadmeName) {
  const BrokerSettings d = DefaultBrokerSettings();
  EXPECT_EQ(d.listen(), "127.0.0.1:50051");
  EXPECT_EQ(d.metrics_listen(), "127.0.0.1:9464");
  EXPECT_EQ(d.health_listen(), "");
  EXPECT_EQ(d.data_dir(), "data");
  EXPECT_EQ(d.backup_dir(), "");
  EXPECT_FALSE(d.insecure_development());
  EXPECT_EQ(d.lease_seconds(), 1800);
  EXPECT_EQ(d.max_lease_seconds(), 86400);
  EXPECT_EQ(d.max_deliveries(), 5);
  EXPECT_EQ(d.lease_check_ms(), 200);
  EXPECT_EQ(d.repeated_concern_days(), 365);
  EXPECT_EQ(d.repeated_concern_threshold(), 3);
  EXPECT_EQ(d.outcome_ack_overdue_hours(), 24);
  EXPECT_EQ(d.decision_stats_days(), 28);
  EXPECT_EQ(d.rate_limit_per_second(), 500);
  EXPECT_EQ(d.rate_limit_burst(), 5000);
  EXPECT_EQ(d.max_message_bytes(), 4194304);
  EXPECT_EQ(d.shutdown_grace_seconds(), 10);
  EXPECT_EQ(d.shutdown_drain_seconds(), 0);
  EXPECT_EQ(d.log_level(), "info");
}

// The proto comments are the reference; each says "Default <value>." and
// must say what the code does.
TEST(BrokerSettingsDefaultsTest, EachProtoCommentStatesTheDefaultInForce) {
  std::istringstream proto(ReadFile(
      REFERRAL_SOURCE_DIR "/server/proto/server/v1/broker_settings.proto"));
  const std::regex field_line(R"(^\s*optional \w+ (\w+) = \d+;)");
  const std::regex stated(
      R"(Default ("[^"]*"|-?[0-9]+(\.[0-9]+)?|true|false))");
  std::map<std::string, std::string> documented;
  std::string comment;
  for (std::string line; std::getline(proto, line);) {
    std::smatch match;
    if (line.find("//") != std::string::npos &&
        line.find_first_not_of(' ') == line.find("//")) {
      comment += line + "\n";
    } else if (std::regex_search(line, match, field_line)) {
      std::smatch value;
      if (std::regex_search(comment, value, stated)) {
        documented[match[1]] = value[1];
      }
      comment.clear();
    } else {
      comment.clear();
    }
  }
  const BrokerSettings defaults = DefaultBrokerSettings();
  for (const FieldDescriptor* field : AllSettings()) {
    std::string expected = FlagText(defaults, field);
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      expected = absl::StrCat("\"", expected, "\"");
    }
    ASSERT_TRUE(documented.contains(field->name()))
        << field->name() << ": comment does not say \"Default ...\"";
    EXPECT_EQ(documented[field->name()], expected) << field->name();
  }
}

// docs/configuration.md's Settings section has one table row per setting,
// "| `name` | `default` | meaning |".
TEST(BrokerSettingsDefaultsTest,
     ConfigurationPageListsEverySettingWithItsDefault) {
  const std::string page =
      ReadFile(REFERRAL_SOURCE_DIR "/docs/configuration.md");
  const BrokerSettings defaults = DefaultBrokerSettings();
  for (const FieldDescriptor* field : AllSettings()) {
    const std::string row_start = absl::StrCat("| `", field->name(), "` |");
    const size_t at = page.find(row_start);
    ASSERT_NE(at, std::string::npos)
        << "docs/configuration.md has no row for " << field->name();
    const std::string row = page.substr(at, page.find('\n', at) - at);
    const std::string value = FlagText(defaults, field);
    if (!value.empty()) {
      EXPECT_THAT(row, HasSubstr(absl::StrCat("| `", value, "` |")))
          << field->name();
    }
  }
}

// --- Settings reach BrokerOptions ------------------------------------------

TEST(BrokerSettingsConversionTest, EverySettingReachesBrokerOptions) {
  BrokerSettings s;
  s.set_listen("0.0.0.0:1");
  s.set_metrics_listen("0.0.0.0:2");
  s.set_health_listen("0.0.0.0:3");
  s.set_data_dir("/d");
  s.set_backup_dir("/b");
  s.set_encryption_key_file("/k");
  s.set_tls_certificate_file("/c");
  s.set_tls_private_key_file("/p");
  s.set_tls_client_ca_file("/ca");
  s.set_principals_file("/pr");
  s.set_insecure_development(true);
  s.set_routing_file("/r");
  s.set_calendar_file("/cal");
  s.set_lease_seconds(61);
  s.set_max_lease_seconds(62);
  s.set_max_deliveries(7);
  s.set_lease_check_ms(64);
  s.set_repeated_concern_days(65);
  s.set_repeated_concern_threshold(8);
  s.set_outcome_ack_overdue_hours(66);
  s.set_decision_stats_days(67);
  s.set_rate_limit_per_second(68.5);
  s.set_rate_limit_burst(69.5);
  s.set_max_message_bytes(2000000);
  s.set_shutdown_grace_seconds(70);
  s.set_shutdown_drain_seconds(71);

  const BrokerOptions o = ToBrokerOptions(s);
  EXPECT_EQ(o.listen_address, "0.0.0.0:1");
  EXPECT_EQ(o.metrics_listen, "0.0.0.0:2");
  EXPECT_EQ(o.health_listen, "0.0.0.0:3");
  EXPECT_EQ(o.data_dir, "/d");
  EXPECT_EQ(o.backup_dir, "/b");
  EXPECT_EQ(o.encryption_key_file, "/k");
  EXPECT_EQ(o.tls_certificate_file, "/c");
  EXPECT_EQ(o.tls_private_key_file, "/p");
  EXPECT_EQ(o.tls_client_ca_file, "/ca");
  EXPECT_EQ(o.principals_file, "/pr");
  EXPECT_TRUE(o.insecure_development);
  EXPECT_EQ(o.routing_file, "/r");
  EXPECT_EQ(o.calendar_file, "/cal");
  EXPECT_EQ(o.default_lease, absl::Seconds(61));
  EXPECT_EQ(o.max_lease, absl::Seconds(62));
  EXPECT_EQ(o.max_deliveries, 7);
  EXPECT_EQ(o.lease_check_interval, absl::Milliseconds(64));
  EXPECT_EQ(o.repeated_concern_window, absl::Hours(24 * 65));
  EXPECT_EQ(o.repeated_concern_threshold, 8);
  EXPECT_EQ(o.outcome_ack_overdue, absl::Hours(66));
  EXPECT_EQ(o.decision_stats_window, absl::Hours(24 * 67));
  EXPECT_EQ(o.rate_limit_per_second, 68.5);
  EXPECT_EQ(o.rate_limit_burst, 69.5);
  EXPECT_EQ(o.max_message_bytes, 2000000);
  EXPECT_EQ(o.shutdown_grace, absl::Seconds(70));
  EXPECT_EQ(o.shutdown_drain, absl::Seconds(71));
  // And back: nothing is lost either way.
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
      SettingsFromOptions(o), s))
      << SettingsFromOptions(o).DebugString();
}

// Guards a setting added to the proto but not to the conversion: each one,
// changed alone, survives the trip through BrokerOptions.
TEST(BrokerSettingsConversionTest, NoSettingIsDroppedOnTheWayToBrokerOptions) {
  const std::set<std::string> binary_only = {
      "log_level", "port_file", "metrics_port_file", "health_port_file"};
  for (const FieldDescriptor* field : AllSettings()) {
    if (binary_only.contains(field->name())) continue;
    BrokerSettings changed = DefaultBrokerSettings();
    const auto* reflection = changed.GetReflection();
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        reflection->SetString(&changed, field, "changed:1");
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        reflection->SetBool(&changed, field,
                            !reflection->GetBool(changed, field));
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        reflection->SetInt32(&changed, field,
                             reflection->GetInt32(changed, field) + 1);
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        reflection->SetDouble(&changed, field,
                              reflection->GetDouble(changed, field) + 1);
        break;
      default:
        FAIL() << field->name();
    }
    const BrokerSettings back = SettingsFromOptions(ToBrokerOptions(changed));
    EXPECT_EQ(FlagText(back, field), FlagText(changed, field)) << field->name();
  }
}

TEST(BrokerSettingsConversionTest, AbsentSettingsKeepBrokerOptionsDefaults) {
  BrokerSettings only_lease;
  only_lease.set_lease_seconds(60);
  const BrokerOptions o = ToBrokerOptions(only_lease);
  EXPECT_EQ(o.default_lease, absl::Seconds(60));
  EXPECT_EQ(o.max_lease, BrokerOptions().max_lease);
  EXPECT_EQ(o.listen_address, BrokerOptions().listen_address);
}

TEST(BrokerSettingsConversionTest, PathSettingsAreThoseNamedFileOrDir) {
  std::set<std::string> paths;
  for (const FieldDescriptor* field : AllSettings()) {
    if (IsPathSetting(field->name())) paths.insert(field->name());
  }
  EXPECT_EQ(paths, (std::set<std::string>{
                       "port_file", "metrics_port_file", "health_port_file",
                       "data_dir", "backup_dir", "encryption_key_file",
                       "tls_certificate_file", "tls_private_key_file",
                       "tls_client_ca_file", "principals_file", "routing_file",
                       "calendar_file"}));
}

// --- The settings file -----------------------------------------------------

TEST(BrokerSettingsFileTest, ReadsSettingsAndWhereEachWasWritten) {
  Locations where;
  auto settings = ParseBrokerSettingsFile(
      "# comment\nlease_seconds: 600\n  listen: \"0.0.0.0:50051\"\n",
      "/etc/rb/broker.txtpb", &where);
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->lease_seconds(), 600);
  EXPECT_EQ(settings->listen(), "0.0.0.0:50051");
  EXPECT_FALSE(settings->has_max_deliveries());
  EXPECT_EQ(where["lease_seconds"], "/etc/rb/broker.txtpb:2:1");
  EXPECT_EQ(where["listen"], "/etc/rb/broker.txtpb:3:3");
  EXPECT_FALSE(where.contains("max_deliveries"));
}

TEST(BrokerSettingsFileTest, SyntaxErrorsAreLocatedByLineAndColumn) {
  auto settings = ParseBrokerSettingsFile(
      "lease_seconds: 600\nmax_deliveries: five\n", "b.txtpb");
  ASSERT_FALSE(settings.ok());
  EXPECT_EQ(settings.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(settings.status()), StartsWith("b.txtpb:2:17: "));
}

TEST(BrokerSettingsFileTest, AnUnknownSettingIsAnErrorNotIgnored) {
  // A typo must not silently leave the default in force.
  auto settings = ParseBrokerSettingsFile("\nlease_second: 600\n", "b.txtpb");
  ASSERT_FALSE(settings.ok());
  EXPECT_THAT(Message(settings.status()),
              AllOf(StartsWith("b.txtpb:2:"), HasSubstr("lease_second")));
}

TEST(BrokerSettingsFileTest, ASettingWrittenTwiceIsAnError) {
  auto settings = ParseBrokerSettingsFile(
      "lease_seconds: 600\nlease_seconds: 900\n", "b.txtpb");
  ASSERT_FALSE(settings.ok());
  EXPECT_THAT(Message(settings.status()), StartsWith("b.txtpb:2:"));
}

TEST(BrokerSettingsFileTest, OutOfRangeNumberIsLocated) {
  auto settings =
      ParseBrokerSettingsFile("lease_seconds: 99999999999\n", "b.txtpb");
  ASSERT_FALSE(settings.ok());
  EXPECT_THAT(Message(settings.status()), StartsWith("b.txtpb:1:"));
}

TEST(BrokerSettingsFileTest, RelativePathsAreTakenFromTheFilesDirectory) {
  auto settings = ParseBrokerSettingsFile(
      "routing_file: \"routing.txtpb\"\n"
      "tls_certificate_file: \"tls/../tls/broker.pem\"\n"
      "data_dir: \"../../var/lib/rb\"\n"
      "calendar_file: \"/srv/calendar.txtpb\"\n"
      "backup_dir: \"\"\n"
      "listen: \"localhost:1\"\n",
      "/etc/rb/broker.txtpb");
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->routing_file(), "/etc/rb/routing.txtpb");
  EXPECT_EQ(settings->tls_certificate_file(), "/etc/rb/tls/broker.pem");
  EXPECT_EQ(settings->data_dir(), "/var/lib/rb");
  // Absolute paths, "off" (empty) and settings that are not paths: as
  // written.
  EXPECT_EQ(settings->calendar_file(), "/srv/calendar.txtpb");
  EXPECT_EQ(settings->backup_dir(), "");
  EXPECT_EQ(settings->listen(), "localhost:1");
}

TEST(BrokerSettingsFileTest, AFileInTheWorkingDirectoryLeavesPathsRelative) {
  auto settings =
      ParseBrokerSettingsFile("data_dir: \"data\"\n", "broker.txtpb");
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->data_dir(), "data");
  auto nested =
      ParseBrokerSettingsFile("data_dir: \"data\"\n", "conf/broker.txtpb");
  ASSERT_TRUE(nested.ok()) << nested.status();
  EXPECT_EQ(nested->data_dir(), "conf/data");
}

// --- Defaults, file and flags combined --------------------------------------

class ResolveTest : public ::testing::Test {
 protected:
  std::string Config(const std::string& text) {
    const std::string path = dir_.Sub("etc/broker.txtpb");
    WriteFile(path, text);
    return path;
  }
  referral::testing::TempDir dir_;
};

TEST_F(ResolveTest, WithoutFileOrFlagsEverySettingIsItsDefault) {
  auto resolved = ResolveBrokerSettings("", Flags());
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
      resolved->settings, DefaultBrokerSettings()));
  EXPECT_TRUE(resolved->from_file.empty());
  EXPECT_EQ(resolved->config_file, "");
}

TEST_F(ResolveTest, TheFileOverridesDefaults) {
  const std::string path = Config("lease_seconds: 600\nmax_deliveries: 2\n");
  auto resolved = ResolveBrokerSettings(path, Flags());
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->settings.lease_seconds(), 600);
  EXPECT_EQ(resolved->settings.max_deliveries(), 2);
  EXPECT_EQ(resolved->settings.max_lease_seconds(), 86400);  // default
  EXPECT_EQ(resolved->from_file.at("lease_seconds"), path + ":1:1");
  EXPECT_FALSE(resolved->from_file.contains("max_lease_seconds"));
}

TEST_F(ResolveTest, FlagsGivenOnTheCommandLineOverrideTheFile) {
  const std::string path = Config("lease_seconds: 600\nmax_deliveries: 2\n");
  auto resolved =
      ResolveBrokerSettings(path, Flags({{"lease_seconds", "900"}}));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->settings.lease_seconds(), 900);
  EXPECT_EQ(resolved->settings.max_deliveries(), 2);
  // The value in force did not come from the file.
  EXPECT_FALSE(resolved->from_file.contains("lease_seconds"));
}

TEST_F(ResolveTest, AFlagGivenWithTheDefaultValueStillOverridesTheFile) {
  const std::string path = Config("lease_seconds: 600\n");
  auto resolved =
      ResolveBrokerSettings(path, Flags({{"lease_seconds", "1800"}}));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->settings.lease_seconds(), 1800);
}

TEST_F(ResolveTest, AnEmptyValueInTheFileTurnsOffADefaultEndpoint) {
  const std::string path = Config("metrics_listen: \"\"\n");
  auto resolved = ResolveBrokerSettings(path, Flags());
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->settings.metrics_listen(), "");
}

TEST_F(ResolveTest, FlagPathsStayRelativeToTheWorkingDirectory) {
  const std::string path = Config("routing_file: \"routing.txtpb\"\n");
  auto from_file = ResolveBrokerSettings(path, Flags());
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_EQ(from_file->settings.routing_file(), dir_.Sub("etc/routing.txtpb"));
  auto from_flag =
      ResolveBrokerSettings(path, Flags({{"routing_file", "mine.txtpb"}}));
  ASSERT_TRUE(from_flag.ok()) << from_flag.status();
  EXPECT_EQ(from_flag->settings.routing_file(), "mine.txtpb");
}

TEST_F(ResolveTest, BoolAndDoubleFlagsAreRead) {
  auto resolved =
      ResolveBrokerSettings("", Flags({{"insecure_development", "true"},
                                       {"rate_limit_per_second", "0.25"}}));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_TRUE(resolved->settings.insecure_development());
  EXPECT_EQ(resolved->settings.rate_limit_per_second(), 0.25);
}

TEST_F(ResolveTest, AMissingFileIsAnErrorNamingIt) {
  auto resolved = ResolveBrokerSettings(dir_.Sub("nope.txtpb"), Flags());
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(resolved.status()),
            "config_file: " + dir_.Sub("nope.txtpb") + ": cannot open file");
}

TEST_F(ResolveTest, AFileWithASyntaxErrorIsLocated) {
  const std::string path = Config("lease_seconds: 600\nlisten 0.0.0.0\n");
  auto resolved = ResolveBrokerSettings(path, Flags());
  ASSERT_FALSE(resolved.ok());
  EXPECT_THAT(Message(resolved.status()), StartsWith(path + ":2:"));
}

TEST_F(ResolveTest, ASettingWithoutAFlagIsAProgrammingError) {
  const SettingFlagLookup missing_one =
      [](const std::string& name) -> std::optional<SettingFlag> {
    if (name == "backup_dir") return std::nullopt;
    return Flags()(name);
  };
  auto resolved = ResolveBrokerSettings("", missing_one);
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(Message(resolved.status()), HasSubstr("backup_dir"));
}

// --- CheckOptions: one bad value at a time ----------------------------------

class CheckOptionsTest : public ::testing::Test {
 protected:
  BrokerOptions Good() { return DevelopmentOptions(dir_); }
  referral::testing::TempDir dir_;
};

TEST_F(CheckOptionsTest, AcceptsDevelopmentModeWithTheShippedRules) {
  EXPECT_TRUE(Broker::CheckOptions(Good()).ok())
      << Broker::CheckOptions(Good());
}

TEST_F(CheckOptionsTest, DoesNotCreateTheDataDirectory) {
  BrokerOptions options = Good();
  ASSERT_TRUE(Broker::CheckOptions(options).ok());
  EXPECT_FALSE(std::filesystem::exists(options.data_dir));
}

TEST_F(CheckOptionsTest, RejectsANonPositiveLease) {
  BrokerOptions options = Good();
  options.default_lease = absl::ZeroDuration();
  EXPECT_EQ(CheckError(options), "lease_seconds: must be positive (got 0)");
}

TEST_F(CheckOptionsTest, RejectsAMaximumLeaseBelowTheDefaultLease) {
  BrokerOptions options = Good();
  options.default_lease = absl::Seconds(600);
  options.max_lease = absl::Seconds(60);
  EXPECT_EQ(CheckError(options),
            "max_lease_seconds: must be at least lease_seconds (600) (got 60)");
  options.max_lease = absl::Seconds(-1);
  EXPECT_EQ(CheckError(options),
            "max_lease_seconds: must be positive (got -1)");
}

TEST_F(CheckOptionsTest, RejectsFewerThanOneDelivery) {
  BrokerOptions options = Good();
  options.max_deliveries = 0;
  EXPECT_EQ(CheckError(options), "max_deliveries: must be at least 1 (got 0)");
}

TEST_F(CheckOptionsTest, RejectsALeaseCheckThatNeverRunsOrRarelyRuns) {
  BrokerOptions options = Good();
  options.lease_check_interval = absl::ZeroDuration();
  EXPECT_EQ(CheckError(options),
            "lease_check_ms: must be from 1 to 60000 (got 0)");
  options.lease_check_interval = absl::Milliseconds(60001);
  EXPECT_EQ(CheckError(options),
            "lease_check_ms: must be from 1 to 60000 (got 60001)");
}

TEST_F(CheckOptionsTest, RejectsAnEmptyRepeatedConcernWindowOrThreshold) {
  BrokerOptions options = Good();
  options.repeated_concern_window = absl::ZeroDuration();
  options.repeated_concern_threshold = 0;
  const std::string error = CheckError(options);
  EXPECT_THAT(error,
              HasSubstr("repeated_concern_days: must be positive (got 0)"));
  EXPECT_THAT(
      error,
      HasSubstr("repeated_concern_threshold: must be at least 1 (got 0)"));
}

TEST_F(CheckOptionsTest, RejectsNegativeOrEmptyStatisticsWindows) {
  BrokerOptions options = Good();
  options.outcome_ack_overdue = absl::Hours(-1);
  options.decision_stats_window = absl::ZeroDuration();
  const std::string error = CheckError(options);
  EXPECT_THAT(
      error,
      HasSubstr("outcome_ack_overdue_hours: must not be negative (got -1)"));
  EXPECT_THAT(error,
              HasSubstr("decision_stats_days: must be positive (got 0)"));
}

TEST_F(CheckOptionsTest, RejectsRateLimitsThatLetNothingThrough) {
  BrokerOptions options = Good();
  options.rate_limit_per_second = 0;
  options.rate_limit_burst = 0.5;
  const std::string error = CheckError(options);
  EXPECT_THAT(error,
              HasSubstr("rate_limit_per_second: must be positive (got 0)"));
  EXPECT_THAT(error,
              HasSubstr("rate_limit_burst: must be at least 1 (got 0.5)"));
  options = Good();
  options.rate_limit_per_second = std::nan("");
  EXPECT_THAT(CheckError(options), StartsWith("rate_limit_per_second: "));
}

TEST_F(CheckOptionsTest, RejectsAMessageLimitOutsideTheSaneRange) {
  BrokerOptions options = Good();
  options.max_message_bytes = 1000;
  EXPECT_EQ(CheckError(options),
            "max_message_bytes: must be from 1048576 (1 MiB) to 67108864 "
            "(64 MiB) (got 1000)");
  options.max_message_bytes = 100 << 20;
  EXPECT_THAT(CheckError(options), StartsWith("max_message_bytes: "));
}

TEST_F(CheckOptionsTest, RejectsNegativeShutdownTimes) {
  BrokerOptions options = Good();
  options.shutdown_grace = absl::Seconds(-1);
  options.shutdown_drain = absl::Seconds(-2);
  const std::string error = CheckError(options);
  EXPECT_THAT(
      error,
      HasSubstr("shutdown_grace_seconds: must not be negative (got -1)"));
  EXPECT_THAT(
      error,
      HasSubstr("shutdown_drain_seconds: must not be negative (got -2)"));
}

TEST_F(CheckOptionsTest, ReportsSubSecondDurationsReadably) {
  BrokerOptions options = Good();
  options.default_lease = absl::Milliseconds(-500);
  EXPECT_EQ(CheckError(options),
            "lease_seconds: must be positive (got -500ms)");
}

TEST_F(CheckOptionsTest, RejectsListenAddressesThatAreNotHostPort) {
  for (const char* bad : {"localhost", "127.0.0.1:", ":50051", "127.0.0.1:x",
                          "127.0.0.1:65536", "::1:50051", "[::1:50051"}) {
    BrokerOptions options = Good();
    options.listen_address = "localhost:0";
    options.metrics_listen = bad;
    EXPECT_THAT(CheckError(options),
                StartsWith("metrics_listen: must be host:port"))
        << bad;
  }
  BrokerOptions options = Good();
  options.listen_address = "";
  EXPECT_THAT(CheckError(options), StartsWith("listen: must be host:port"));
}

TEST_F(CheckOptionsTest, AcceptsNamesIpv4AndBracketedIpv6) {
  for (const char* good : {"localhost:0", "127.0.0.1:50051", "[::1]:50051"}) {
    BrokerOptions options = Good();
    options.listen_address = good;
    options.health_listen = "[::]:50052";
    EXPECT_TRUE(Broker::CheckOptions(options).ok())
        << good << ": " << Broker::CheckOptions(options);
  }
}

TEST_F(CheckOptionsTest, RejectsTwoEndpointsOnOnePort) {
  BrokerOptions options = Good();
  options.listen_address = "127.0.0.1:50051";
  options.metrics_listen = "0.0.0.0:50051";
  EXPECT_EQ(CheckError(options),
            "metrics_listen: port 50051 is already used by listen");
  options = Good();
  options.health_listen = "127.0.0.1:9464";
  EXPECT_EQ(CheckError(options),
            "health_listen: port 9464 is already used by metrics_listen");
  // Port 0 picks a free port for each.
  options = Good();
  options.listen_address = "127.0.0.1:0";
  options.metrics_listen = "127.0.0.1:0";
  options.health_listen = "127.0.0.1:0";
  EXPECT_TRUE(Broker::CheckOptions(options).ok());
}

TEST_F(CheckOptionsTest, RejectsAMissingOrNonDirectoryDataDir) {
  BrokerOptions options = Good();
  options.data_dir = "";
  EXPECT_EQ(CheckError(options), "data_dir: must not be empty");
  WriteFile(dir_.Sub("file"), "x");
  options.data_dir = dir_.Sub("file");
  EXPECT_EQ(CheckError(options),
            "data_dir: " + dir_.Sub("file") + ": not a directory");
}

TEST_F(CheckOptionsTest, RejectsABackupDirectoryInsideTheData) {
  BrokerOptions options = Good();
  options.backup_dir = options.data_dir + "/backups";
  EXPECT_THAT(CheckError(options),
              StartsWith("backup_dir: " + options.backup_dir +
                         ": must be outside data_dir"));
  options.backup_dir = dir_.path();
  EXPECT_THAT(CheckError(options), HasSubstr("must not contain data_dir"));
  options.backup_dir = dir_.Sub("backups");
  EXPECT_TRUE(Broker::CheckOptions(options).ok());
}

TEST_F(CheckOptionsTest, RejectsAnUnknownLogLevel) {
  ResolvedBrokerSettings resolved;
  resolved.settings = DefaultBrokerSettings();
  resolved.settings.set_insecure_development(true);
  resolved.settings.set_data_dir(dir_.Sub("data"));
  ASSERT_TRUE(CheckBrokerSettings(resolved).ok())
      << CheckBrokerSettings(resolved);
  resolved.settings.set_log_level("loud");
  EXPECT_EQ(Message(CheckBrokerSettings(resolved)),
            "log_level: must be debug, info, warning or error (got \"loud\")");
}

TEST_F(CheckOptionsTest, RejectsAPortFileInADirectoryThatDoesNotExist) {
  ResolvedBrokerSettings resolved;
  resolved.settings = DefaultBrokerSettings();
  resolved.settings.set_insecure_development(true);
  resolved.settings.set_data_dir(dir_.Sub("data"));
  resolved.settings.set_port_file(dir_.Sub("nowhere/port"));
  EXPECT_EQ(Message(CheckBrokerSettings(resolved)),
            "port_file: directory " + dir_.Sub("nowhere") + " does not exist");
}

TEST_F(CheckOptionsTest, ReportsEveryProblemAtOnce) {
  BrokerOptions options = Good();
  options.default_lease = absl::ZeroDuration();
  options.max_deliveries = 0;
  EXPECT_EQ(CheckError(options),
            "lease_seconds: must be positive (got 0); max_deliveries: must be "
            "at least 1 (got 0)");
}

// --- CheckOptions: rules and principals --------------------------------------

TEST_F(CheckOptionsTest, ABrokenRoutingFileIsNamedWithItsLine) {
  BrokerOptions options = Good();
  options.routing_file = dir_.Sub("routing.txtpb");
  WriteFile(options.routing_file,
            ReadFile(absl::StrCat(kShippedConfig, "/routing.txtpb")) +
                "\nnot_a_field: 1\n");
  EXPECT_THAT(CheckError(options),
              ::testing::MatchesRegex("routing_file: " + options.routing_file +
                                      ":[0-9]+:[0-9]+: .*not_a_field.*"));
}

TEST_F(CheckOptionsTest, AMissingRoutingOrCalendarFileIsNamed) {
  BrokerOptions options = Good();
  options.routing_file = dir_.Sub("none.txtpb");
  options.calendar_file = dir_.Sub("nocal.txtpb");
  EXPECT_EQ(CheckError(options), "routing_file: " + dir_.Sub("none.txtpb") +
                                     ": cannot open file; calendar_file: " +
                                     dir_.Sub("nocal.txtpb") +
                                     ": cannot open file");
}

TEST_F(CheckOptionsTest, ABrokenCalendarFileIsNamedWithItsLine) {
  BrokerOptions options = Good();
  options.calendar_file = dir_.Sub("calendar.txtpb");
  WriteFile(options.calendar_file, "time_zone: \"Europe/London\"\nwork {\n");
  EXPECT_THAT(CheckError(options),
              StartsWith("calendar_file: " + options.calendar_file + ":2:"));
}

TEST_F(CheckOptionsTest, ABrokenPrincipalsFileIsNamedWithItsLine) {
  BrokerOptions options = Good();
  options.principals_file = dir_.Sub("principals.txtpb");
  WriteFile(options.principals_file, "principals {\n  roles: ROLE_OPS\n}\n");
  EXPECT_THAT(
      CheckError(options),
      StartsWith("principals_file: " + options.principals_file + ":1:"));
}

TEST_F(CheckOptionsTest, APrincipalLimitedToAnUnknownQueueIsRejected) {
  BrokerOptions options = Good();
  options.principals_file = dir_.Sub("principals.txtpb");
  WriteFile(options.principals_file,
            "principals {\n  identity: \"spiffe://x/t\"\n  name: \"t\"\n"
            "  roles: ROLE_TRIAGE\n  allowed_queues: \"ifd-triag\"\n}\n");
  EXPECT_EQ(CheckError(options),
            "principals_file: " + options.principals_file +
                ": allowed_queues not in routing_file: principal \"t\": "
                "unknown queue \"ifd-triag\"");
}

// --- CheckOptions: the encryption key ----------------------------------------

class EncryptionKeyCheckTest : public CheckOptionsTest {
 protected:
  static constexpr char kKey[] =
      "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
  BrokerOptions WithKey(
      const std::string& contents,
      std::filesystem::perms perms = std::filesystem::perms::owner_read |
                                     std::filesystem::perms::owner_write) {
    BrokerOptions options = Good();
    options.encryption_key_file = dir_.Sub("secrets/encryption.key");
    WriteFile(options.encryption_key_file, contents, perms);
    return options;
  }
};

TEST_F(EncryptionKeyCheckTest, AcceptsAKeyAsMakeEncryptionKeyWritesIt) {
  EXPECT_TRUE(Broker::CheckOptions(WithKey(kKey)).ok())
      << Broker::CheckOptions(WithKey(kKey));
}

TEST_F(EncryptionKeyCheckTest, RejectsAMissingKeyFile) {
  BrokerOptions options = Good();
  options.encryption_key_file = dir_.Sub("none.key");
  EXPECT_EQ(
      CheckError(options),
      "encryption_key_file: " + dir_.Sub("none.key") + ": cannot open file");
}

TEST_F(EncryptionKeyCheckTest, RejectsAKeyOtherUsersCanRead) {
  const BrokerOptions options =
      WithKey(kKey, std::filesystem::perms::owner_read |
                        std::filesystem::perms::owner_write |
                        std::filesystem::perms::others_read);
  EXPECT_THAT(CheckError(options),
              AllOf(StartsWith("encryption_key_file: "),
                    HasSubstr("must not be accessible to other users")));
}

TEST_F(EncryptionKeyCheckTest, RejectsAFileThatIsNotAKeyWithoutQuotingIt) {
  const std::string error = CheckError(WithKey("0011secret-words\n"));
  EXPECT_THAT(error, HasSubstr("must hold 64 hexadecimal characters"));
  EXPECT_THAT(error, Not(HasSubstr("secret-words")));
  EXPECT_THAT(CheckError(WithKey(std::string(200, 'a'))),
              HasSubstr("must hold 64 hexadecimal characters"));
}

TEST_F(EncryptionKeyCheckTest, RejectsAnAllZeroKey) {
  EXPECT_THAT(CheckError(WithKey(std::string(64, '0') + "\n")),
              HasSubstr("all zeros"));
}

TEST_F(EncryptionKeyCheckTest, RejectsAKeyKeptInsideTheDataDirectory) {
  BrokerOptions options = Good();
  options.encryption_key_file = options.data_dir + "/encryption.key";
  WriteFile(options.encryption_key_file, kKey);
  EXPECT_THAT(CheckError(options),
              HasSubstr("encryption_key_file: " + options.encryption_key_file +
                        ": must be kept outside data_dir"));
}

// --- CheckOptions: mutual TLS
// -------------------------------------------------

class TlsCheckTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_dir_ = new referral::testing::TempDir();
    pki_status_ = new absl::Status(referral::testing::MakeDevPki(Pki("")));
  }
  static void TearDownTestSuite() {
    delete pki_status_;
    delete pki_dir_;
  }
  void SetUp() override { ASSERT_TRUE(pki_status_->ok()) << *pki_status_; }

  static std::string Pki(const std::string& name) {
    return pki_dir_->Sub("pki/" + name);
  }

  BrokerOptions Tls() {
    BrokerOptions options;
    options.listen_address = "0.0.0.0:50051";
    options.data_dir = dir_.Sub("data");
    options.tls_certificate_file = Pki("server.pem");
    options.tls_private_key_file = Pki("server.key");
    options.tls_client_ca_file = Pki("ca.pem");
    options.principals_file = absl::StrCat(kShippedConfig, "/principals.txtpb");
    return options;
  }

  static referral::testing::TempDir* pki_dir_;
  static absl::Status* pki_status_;
  referral::testing::TempDir dir_;
};

referral::testing::TempDir* TlsCheckTest::pki_dir_ = nullptr;
absl::Status* TlsCheckTest::pki_status_ = nullptr;

TEST_F(TlsCheckTest, AcceptsTheDevelopmentPkiWithTheShippedPrincipals) {
  EXPECT_TRUE(Broker::CheckOptions(Tls()).ok()) << Broker::CheckOptions(Tls());
}

TEST_F(TlsCheckTest, RefusesToServeWithoutTlsOutsideDevelopment) {
  BrokerOptions options;
  options.data_dir = dir_.Sub("data");
  EXPECT_THAT(CheckError(options),
              StartsWith("tls_certificate_file: required (with "
                         "tls_private_key_file, tls_client_ca_file and "
                         "principals_file)"));
}

TEST_F(TlsCheckTest, NeedsAllTlsFilesAndPrincipalsTogether) {
  BrokerOptions options = Tls();
  options.tls_client_ca_file = "";
  options.principals_file = "";
  const std::string error = CheckError(options);
  EXPECT_THAT(error, HasSubstr("tls_client_ca_file: required with TLS"));
  EXPECT_THAT(error, HasSubstr("principals_file: required with TLS"));
  EXPECT_THAT(error, Not(HasSubstr("tls_certificate_file")));
}

TEST_F(TlsCheckTest, RejectsAnUnreadableCertificate) {
  BrokerOptions options = Tls();
  options.tls_certificate_file = dir_.Sub("none.pem");
  EXPECT_EQ(
      CheckError(options),
      "tls_certificate_file: " + dir_.Sub("none.pem") + ": cannot open file");
}

TEST_F(TlsCheckTest, RejectsFilesThatAreNotPem) {
  BrokerOptions options = Tls();
  options.tls_certificate_file = dir_.Sub("cert.pem");
  options.tls_private_key_file = dir_.Sub("key.pem");
  options.tls_client_ca_file = dir_.Sub("ca.pem");
  WriteFile(options.tls_certificate_file, "not a certificate\n");
  WriteFile(options.tls_private_key_file, "not a key\n");
  WriteFile(options.tls_client_ca_file,
            ReadFile(Pki("server.key")));  // a key where a CA belongs
  const std::string error = CheckError(options);
  EXPECT_THAT(
      error, HasSubstr("tls_certificate_file: " + options.tls_certificate_file +
                       ": no PEM certificate found"));
  EXPECT_THAT(
      error, HasSubstr("tls_private_key_file: " + options.tls_private_key_file +
                       ": not a PEM private key"));
  EXPECT_THAT(error,
              HasSubstr("tls_client_ca_file: " + options.tls_client_ca_file +
                        ": no PEM certificate found"));
  // Never the key's contents.
  EXPECT_THAT(error, Not(HasSubstr("PRIVATE KEY")));
}

TEST_F(TlsCheckTest, RejectsAKeyThatDoesNotMatchTheCertificate) {
  BrokerOptions options = Tls();
  options.tls_private_key_file = Pki("cambs-police.key");
  EXPECT_EQ(CheckError(options),
            "tls_private_key_file: " + Pki("cambs-police.key") +
                ": does not match the certificate in tls_certificate_file");
}

TEST_F(TlsCheckTest, RejectsAnExpiredCertificate) {
  BrokerOptions options = Tls();
  options.tls_certificate_file = Pki("expired.pem");
  options.tls_private_key_file = Pki("expired.key");
  EXPECT_EQ(CheckError(options), "tls_certificate_file: " + Pki("expired.pem") +
                                     ": the certificate has expired");
}

TEST_F(TlsCheckTest, RefusesDevelopmentModeWithTlsOrOffLoopback) {
  BrokerOptions options = Tls();
  options.insecure_development = true;
  const std::string error = CheckError(options);
  EXPECT_THAT(error,
              HasSubstr("insecure_development: cannot be combined with TLS"));
  EXPECT_THAT(error, HasSubstr("insecure_development: only allowed when "
                               "listen is a loopback address (got "
                               "\"0.0.0.0:50051\")"));
}

// --- Problems located in the settings file -----------------------------------

TEST_F(ResolveTest, ABadValueInTheFileIsReportedWhereItWasWritten) {
  const std::string path = Config(
      "insecure_development: true\n"
      "data_dir: \"data\"\n"
      "lease_seconds: 0\n");
  auto resolved = ResolveBrokerSettings(path, Flags());
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(Message(CheckBrokerSettings(*resolved)),
            path + ":3:1: lease_seconds: must be positive (got 0)");
  // The same value from a flag has no line to point at.
  auto from_flag =
      ResolveBrokerSettings(path, Flags({{"lease_seconds", "-5"}}));
  ASSERT_TRUE(from_flag.ok()) << from_flag.status();
  EXPECT_EQ(Message(CheckBrokerSettings(*from_flag)),
            "lease_seconds: must be positive (got -5)");
  // And a flag can fix it.
  auto fixed = ResolveBrokerSettings(path, Flags({{"lease_seconds", "600"}}));
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_TRUE(CheckBrokerSettings(*fixed).ok()) << CheckBrokerSettings(*fixed);
}

TEST_F(ResolveTest, ARoutingFilesOwnErrorKeepsOnlyItsOwnLocation) {
  WriteFile(dir_.Sub("etc/routing.txtpb"), "queues {\n");
  const std::string path = Config(
      "insecure_development: true\n"
      "routing_file: \"routing.txtpb\"\n");
  auto resolved = ResolveBrokerSettings(path, Flags());
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_THAT(
      Message(CheckBrokerSettings(*resolved)),
      StartsWith("routing_file: " + dir_.Sub("etc/routing.txtpb") + ":2:"));
}

// --- What --check-config prints
// -----------------------------------------------

TEST_F(ResolveTest, TheSummaryListsEndpointsStorageTlsAndQueues) {
  auto resolved =
      ResolveBrokerSettings("", Flags({{"insecure_development", "true"},
                                       {"data_dir", dir_.Sub("data")},
                                       {"health_listen", "127.0.0.1:50052"}}));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  auto summary = DescribeBrokerSettings(*resolved);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_THAT(*summary, HasSubstr("listen: 127.0.0.1:50051\n"));
  EXPECT_THAT(*summary, HasSubstr("metrics_listen: 127.0.0.1:9464\n"));
  EXPECT_THAT(*summary, HasSubstr("health_listen: 127.0.0.1:50052\n"));
  EXPECT_THAT(*summary, HasSubstr("data_dir: " + dir_.Sub("data") + "\n"));
  EXPECT_THAT(*summary, HasSubstr("backup_dir: off"));
  EXPECT_THAT(*summary, HasSubstr("tls: off"));
  EXPECT_THAT(*summary, HasSubstr("encryption_at_rest: off\n"));
  EXPECT_THAT(*summary, HasSubstr("queues: ifd-urgent, ifd-triage, "
                                  "edt-out-of-hours, out-of-area\n"));
}

// --- Shared helpers
// ---------------------------------------------------------------

TEST(BrokerSettingsHelpersTest, RulesFilesDefaultToTheShippedOnes) {
  EXPECT_EQ(RulesFileOrDefault("", "routing.txtpb"),
            absl::StrCat(kShippedConfig, "/routing.txtpb"));
  EXPECT_EQ(RulesFileOrDefault("/x.txtpb", "routing.txtpb"), "/x.txtpb");
}

TEST(BrokerSettingsHelpersTest, LoopbackAddresses) {
  EXPECT_TRUE(IsLoopbackListenAddress("127.0.0.1:50051"));
  EXPECT_TRUE(IsLoopbackListenAddress("localhost:0"));
  EXPECT_TRUE(IsLoopbackListenAddress("[::1]:50051"));
  EXPECT_FALSE(IsLoopbackListenAddress("0.0.0.0:50051"));
  EXPECT_FALSE(IsLoopbackListenAddress("[::]:50051"));
  EXPECT_FALSE(IsLoopbackListenAddress("10.0.0.1:50051"));
}

}  // namespace
}  // namespace referral::server
