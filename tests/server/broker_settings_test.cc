// Specification of the broker's settings: each declared once, on its field
// of broker_settings.proto (default, help, bounds), and everything derived
// from that declaration (the defaults, the settings table of
// docs/configuration.md); the settings file (errors located
// file:line:column, relative paths taken from the file's directory); how
// defaults, the file and command-line flags combine; every setting reaching
// the broker; and Broker::CheckOptions naming the setting and the problem
// for each bad value. The command line itself: broker_command_line_test.cc.
#include "settings/broker_settings.h"

#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
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
#include "settings/broker_command_line.h"
#include "settings/declared_settings.h"
#include "support/broker_process.h"
#include "support/dev_pki.h"

namespace referral::server {
namespace {

using config::v1::BrokerSettings;
using config::v1::SettingOptions;
using google::protobuf::FieldDescriptor;
using google::protobuf::util::MessageDifferencer;
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

std::vector<const FieldDescriptor*> AllSettings() {
  std::vector<const FieldDescriptor*> fields;
  const auto* type = BrokerSettings::descriptor();
  for (int i = 0; i < type->field_count(); ++i)
    fields.push_back(type->field(i));
  return fields;
}

// The settings given on the command line, each as --name=value, as the
// broker's command-line parser reads them: only those are present.
BrokerSettings Flags(const std::map<std::string, std::string>& given = {}) {
  std::vector<std::string> args;
  for (const auto& [name, value] : given) {
    args.push_back(absl::StrCat("--", name, "=", value));
  }
  absl::StatusOr<BrokerCommandLine> line = ParseBrokerCommandLine(args);
  EXPECT_TRUE(line.ok()) << line.status();
  return line.ok() ? line->settings : BrokerSettings();
}

// Options that pass every check without files of their own: development
// mode on loopback with the shipped rules.
BrokerOptions DevelopmentOptions(const referral::testing::TempDir& dir) {
  BrokerOptions options;
  options.settings.set_insecure_development(true);
  options.settings.set_data_dir(dir.Sub("data"));
  options.settings.set_metrics_listen("127.0.0.1:9464");
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

TEST(BrokerSettingsDefaultsTest, InProcessBrokersHaveThemExceptMetricsOff) {
  BrokerSettings expected = DefaultBrokerSettings();
  // The binary serves metrics on loopback; an embedded broker only if asked.
  EXPECT_EQ(BrokerOptions().settings.metrics_listen(), "");
  expected.set_metrics_listen("");
  EXPECT_TRUE(MessageDifferencer::Equals(BrokerOptions().settings, expected))
      << BrokerOptions().settings.DebugString();
  EXPECT_TRUE(MessageDifferencer::Equals(InProcessBrokerSettings(), expected));
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

// The declaration is the one place a setting is described: each field of
// BrokerSettings (and of BrokerCommand, the flags that are not settings)
// declares a default that is a value of its type and a help line that fits
// a table cell, and bounds only where they mean something.
TEST(BrokerSettingsDefaultsTest, EverySettingDeclaresADefaultOfItsTypeAndHelp) {
  for (const google::protobuf::Descriptor* type :
       {BrokerSettings::descriptor(),
        config::v1::BrokerCommand::descriptor()}) {
    for (int i = 0; i < type->field_count(); ++i) {
      const FieldDescriptor* field = type->field(i);
      ASSERT_TRUE(field->options().HasExtension(config::v1::setting))
          << field->name() << " has no (setting) declaration";
      const SettingOptions& declared = DeclaredSetting(field);
      std::unique_ptr<google::protobuf::Message> scratch(
          google::protobuf::MessageFactory::generated_factory()
              ->GetPrototype(type)
              ->New());
      EXPECT_TRUE(SetSettingFromText(field, declared.default_(), scratch.get()))
          << field->name() << ": default \"" << declared.default_()
          << "\" is not " << SettingKind(field);
      EXPECT_TRUE(field->has_presence()) << field->name() << " not optional";
      EXPECT_FALSE(declared.help().empty()) << field->name();
      EXPECT_THAT(declared.help(), Not(HasSubstr("|"))) << field->name();
      EXPECT_THAT(declared.help(), Not(HasSubstr("\n"))) << field->name();
      EXPECT_FALSE(declared.positive() && declared.has_min()) << field->name();
      const bool is_number =
          field->cpp_type() == FieldDescriptor::CPPTYPE_INT32 ||
          field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE;
      if (!is_number) {
        EXPECT_FALSE(declared.positive() || declared.has_min() ||
                     declared.has_max())
            << field->name() << ": bounds on a value that is not a number";
      }
      if (!declared.empty_means().empty()) {
        EXPECT_EQ(declared.default_(), "") << field->name();
      }
    }
  }
}

// A default stated again in a comment could drift from the declaration:
// the comments say why, the declaration says what.
TEST(BrokerSettingsDefaultsTest, NoProtoCommentRestatesADefault) {
  const std::string proto = ReadFile(
      REFERRAL_SOURCE_DIR "/server/proto/server/v1/broker_settings.proto");
  ASSERT_FALSE(proto.empty());
  EXPECT_FALSE(std::regex_search(
      proto, std::regex(R"(//.*\bDefault ("|-?[0-9]|true|false))")))
      << "a comment in broker_settings.proto states a default";
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
    const std::string value = SettingText(defaults, field);
    if (!value.empty()) {
      EXPECT_THAT(row, HasSubstr(absl::StrCat("| `", value, "` |")))
          << field->name();
    }
  }
}

// The page's table is exactly the one derived from the declarations, so
// it cannot drift: regenerate it with `referral_broker --settings_table`.
TEST(BrokerSettingsDefaultsTest, ConfigurationPageTableIsTheGeneratedOne) {
  const std::string page =
      ReadFile(REFERRAL_SOURCE_DIR "/docs/configuration.md");
  const size_t start = page.find("| setting | default | meaning |\n");
  ASSERT_NE(start, std::string::npos) << "no settings table";
  size_t end = start;
  while (end < page.size() && page[end] == '|') end = page.find('\n', end) + 1;
  const std::string expected = SettingsTable(BrokerSettings::descriptor());
  EXPECT_EQ(page.substr(start, end - start), expected)
      << "docs/configuration.md's settings table is out of date; replace it "
         "with the output of `referral_broker --settings_table`:\n"
      << expected;
}

TEST(BrokerSettingsDefaultsTest, TheTableShowsDefaultsAndBoundsAsDeclared) {
  const std::string table = SettingsTable(BrokerSettings::descriptor());
  EXPECT_THAT(table, HasSubstr("| `lease_seconds` | `1800` | "));
  EXPECT_THAT(table, HasSubstr("| `health_listen` | empty (off) | "));
  EXPECT_THAT(table, HasSubstr("| `tls_client_ca_file` | empty | "));
  EXPECT_THAT(table, HasSubstr("| `rate_limit_per_second` | `500` | "));
  EXPECT_THAT(table, HasSubstr(" From 1 to 60000. |\n"));
  EXPECT_THAT(table,
              HasSubstr(" From 1048576 (1 MiB) to 67108864 (64 MiB). |\n"));
  EXPECT_THAT(table, HasSubstr(" At least 1. |\n"));
  EXPECT_THAT(table, HasSubstr(" Not negative. |\n"));
  EXPECT_THAT(table, HasSubstr(" Positive. |\n"));
}

// --- Settings reach the broker ---------------------------------------------

// Each setting is read by the code that uses it: the broker or main.cc
// (server/src outside settings/, whose code reads every setting by
// reflection). Guards a setting declared but never used.
TEST(BrokerSettingsUseTest, EverySettingIsReadWhereItIsUsed) {
  std::string sources;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(
           REFERRAL_SOURCE_DIR "/server/src")) {
    if (entry.path().extension() != ".cc" ||
        entry.path().parent_path().filename() == "settings") {
      continue;
    }
    sources += ReadFile(entry.path().string());
  }
  ASSERT_FALSE(sources.empty());
  for (const FieldDescriptor* field : AllSettings()) {
    EXPECT_THAT(sources, HasSubstr(absl::StrCat(".", field->name(), "()")))
        << field->name() << " is declared but nothing reads it";
  }
}

// What the broker reads is what it was given: each setting, changed alone,
// survives the completion of absent settings with their defaults.
TEST(BrokerSettingsUseTest, NoSettingIsDroppedOnTheWayToTheBroker) {
  for (const FieldDescriptor* field : AllSettings()) {
    BrokerOptions options;
    const auto* reflection = options.settings.GetReflection();
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        reflection->SetString(&options.settings, field, "changed:1");
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        reflection->SetBool(&options.settings, field,
                            !reflection->GetBool(options.settings, field));
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        reflection->SetInt32(&options.settings, field,
                             reflection->GetInt32(options.settings, field) + 1);
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        reflection->SetDouble(
            &options.settings, field,
            reflection->GetDouble(options.settings, field) + 1);
        break;
      default:
        FAIL() << field->name();
    }
    const BrokerOptions completed = WithDefaultSettings(options);
    EXPECT_EQ(SettingText(completed.settings, field),
              SettingText(options.settings, field))
        << field->name();
  }
}

TEST(BrokerSettingsUseTest, AbsentSettingsKeepTheirInProcessDefaults) {
  BrokerOptions only_lease;
  only_lease.settings = BrokerSettings();
  only_lease.settings.set_lease_seconds(60);
  const BrokerSettings s = WithDefaultSettings(only_lease).settings;
  EXPECT_EQ(s.lease_seconds(), 60);
  EXPECT_EQ(s.max_lease_seconds(), DefaultBrokerSettings().max_lease_seconds());
  EXPECT_EQ(s.listen(), DefaultBrokerSettings().listen());
  EXPECT_EQ(s.metrics_listen(), "");
  // And a broker given them checks (and would start) as with every default.
  only_lease.settings.set_insecure_development(true);
  referral::testing::TempDir dir;
  only_lease.settings.set_data_dir(dir.Sub("data"));
  EXPECT_TRUE(Broker::CheckOptions(only_lease).ok())
      << Broker::CheckOptions(only_lease);
}

TEST(BrokerSettingsUseTest, PathSettingsAreThoseNamedFileOrDir) {
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

// Durations and sizes are whole numbers in the unit their name ends with
// (the broker converts where it uses them): no number without a unit or a
// count in its name.
TEST(BrokerSettingsUseTest, EveryNumberSaysItsUnitOrIsACount) {
  const std::regex unit_or_count(
      R"(.*_(seconds|ms|hours|days|bytes|deliveries|threshold|per_second|burst))");
  for (const FieldDescriptor* field : AllSettings()) {
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_INT32 &&
        field->cpp_type() != FieldDescriptor::CPPTYPE_DOUBLE) {
      continue;
    }
    EXPECT_TRUE(std::regex_match(field->name(), unit_or_count))
        << field->name();
  }
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
  EXPECT_TRUE(
      MessageDifferencer::Equals(resolved->settings, DefaultBrokerSettings()));
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

// No setting lacks a flag: each one, given as --name=value, overrides a
// file that sets it.
TEST_F(ResolveTest, EverySettingIsAFlagThatOverridesTheFile) {
  std::string file;
  std::map<std::string, std::string> given;
  const BrokerSettings defaults = DefaultBrokerSettings();
  for (const FieldDescriptor* field : AllSettings()) {
    absl::StrAppend(&file, field->name(), ": ",
                    field->cpp_type() == FieldDescriptor::CPPTYPE_STRING
                        ? "\"from-file\""
                        : SettingText(defaults, field),
                    "\n");
    given[field->name()] = SettingText(defaults, field);
  }
  auto resolved = ResolveBrokerSettings(Config(file), Flags(given));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_TRUE(resolved->from_file.empty());
  EXPECT_TRUE(MessageDifferencer::Equals(resolved->settings, defaults))
      << resolved->settings.DebugString();
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
  EXPECT_FALSE(std::filesystem::exists(options.settings.data_dir()));
}

TEST_F(CheckOptionsTest, RejectsANonPositiveLease) {
  BrokerOptions options = Good();
  options.settings.set_lease_seconds(0);
  EXPECT_EQ(CheckError(options), "lease_seconds: must be positive (got 0)");
}

TEST_F(CheckOptionsTest, RejectsAMaximumLeaseBelowTheDefaultLease) {
  BrokerOptions options = Good();
  options.settings.set_lease_seconds(600);
  options.settings.set_max_lease_seconds(60);
  EXPECT_EQ(CheckError(options),
            "max_lease_seconds: must be at least lease_seconds (600) (got 60)");
  options.settings.set_max_lease_seconds(-1);
  EXPECT_EQ(CheckError(options),
            "max_lease_seconds: must be positive (got -1)");
}

TEST_F(CheckOptionsTest, RejectsFewerThanOneDelivery) {
  BrokerOptions options = Good();
  options.settings.set_max_deliveries(0);
  EXPECT_EQ(CheckError(options), "max_deliveries: must be at least 1 (got 0)");
}

TEST_F(CheckOptionsTest, RejectsALeaseCheckThatNeverRunsOrRarelyRuns) {
  BrokerOptions options = Good();
  options.settings.set_lease_check_ms(0);
  EXPECT_EQ(CheckError(options),
            "lease_check_ms: must be from 1 to 60000 (got 0)");
  options.settings.set_lease_check_ms(60001);
  EXPECT_EQ(CheckError(options),
            "lease_check_ms: must be from 1 to 60000 (got 60001)");
}

TEST_F(CheckOptionsTest, RejectsAnEmptyRepeatedConcernWindowOrThreshold) {
  BrokerOptions options = Good();
  options.settings.set_repeated_concern_days(0);
  options.settings.set_repeated_concern_threshold(0);
  const std::string error = CheckError(options);
  EXPECT_THAT(error,
              HasSubstr("repeated_concern_days: must be positive (got 0)"));
  EXPECT_THAT(
      error,
      HasSubstr("repeated_concern_threshold: must be at least 1 (got 0)"));
}

TEST_F(CheckOptionsTest, RejectsNegativeOrEmptyStatisticsWindows) {
  BrokerOptions options = Good();
  options.settings.set_outcome_ack_overdue_hours(-1);
  options.settings.set_decision_stats_days(0);
  const std::string error = CheckError(options);
  EXPECT_THAT(
      error,
      HasSubstr("outcome_ack_overdue_hours: must not be negative (got -1)"));
  EXPECT_THAT(error,
              HasSubstr("decision_stats_days: must be positive (got 0)"));
}

TEST_F(CheckOptionsTest, RejectsRateLimitsThatLetNothingThrough) {
  BrokerOptions options = Good();
  options.settings.set_rate_limit_per_second(0);
  options.settings.set_rate_limit_burst(0.5);
  const std::string error = CheckError(options);
  EXPECT_THAT(error,
              HasSubstr("rate_limit_per_second: must be positive (got 0)"));
  EXPECT_THAT(error,
              HasSubstr("rate_limit_burst: must be at least 1 (got 0.5)"));
  options = Good();
  options.settings.set_rate_limit_per_second(std::nan(""));
  EXPECT_THAT(CheckError(options), StartsWith("rate_limit_per_second: "));
}

TEST_F(CheckOptionsTest, RejectsAMessageLimitOutsideTheSaneRange) {
  BrokerOptions options = Good();
  options.settings.set_max_message_bytes(1000);
  EXPECT_EQ(CheckError(options),
            "max_message_bytes: must be from 1048576 (1 MiB) to 67108864 "
            "(64 MiB) (got 1000)");
  options.settings.set_max_message_bytes(100 << 20);
  EXPECT_THAT(CheckError(options), StartsWith("max_message_bytes: "));
}

TEST_F(CheckOptionsTest, RejectsNegativeShutdownTimes) {
  BrokerOptions options = Good();
  options.settings.set_shutdown_grace_seconds(-1);
  options.settings.set_shutdown_drain_seconds(-2);
  const std::string error = CheckError(options);
  EXPECT_THAT(
      error,
      HasSubstr("shutdown_grace_seconds: must not be negative (got -1)"));
  EXPECT_THAT(
      error,
      HasSubstr("shutdown_drain_seconds: must not be negative (got -2)"));
}

// Durations are whole numbers in the unit the setting's name says (an
// in-process caller sets them the same way), so a value is reported as
// written, in that unit.
TEST_F(CheckOptionsTest, ReportsValuesInTheUnitOfTheSetting) {
  BrokerOptions options = Good();
  options.settings.set_lease_seconds(-500);
  EXPECT_EQ(CheckError(options), "lease_seconds: must be positive (got -500)");
}

TEST_F(CheckOptionsTest, RejectsListenAddressesThatAreNotHostPort) {
  for (const char* bad : {"localhost", "127.0.0.1:", ":50051", "127.0.0.1:x",
                          "127.0.0.1:65536", "::1:50051", "[::1:50051"}) {
    BrokerOptions options = Good();
    options.settings.set_listen("localhost:0");
    options.settings.set_metrics_listen(bad);
    EXPECT_THAT(CheckError(options),
                StartsWith("metrics_listen: must be host:port"))
        << bad;
  }
  BrokerOptions options = Good();
  options.settings.set_listen("");
  EXPECT_THAT(CheckError(options), StartsWith("listen: must be host:port"));
}

TEST_F(CheckOptionsTest, AcceptsNamesIpv4AndBracketedIpv6) {
  for (const char* good : {"localhost:0", "127.0.0.1:50051", "[::1]:50051"}) {
    BrokerOptions options = Good();
    options.settings.set_listen(good);
    options.settings.set_health_listen("[::]:50052");
    EXPECT_TRUE(Broker::CheckOptions(options).ok())
        << good << ": " << Broker::CheckOptions(options);
  }
}

TEST_F(CheckOptionsTest, RejectsTwoEndpointsOnOnePort) {
  BrokerOptions options = Good();
  options.settings.set_listen("127.0.0.1:50051");
  options.settings.set_metrics_listen("0.0.0.0:50051");
  EXPECT_EQ(CheckError(options),
            "metrics_listen: port 50051 is already used by listen");
  options = Good();
  options.settings.set_health_listen("127.0.0.1:9464");
  EXPECT_EQ(CheckError(options),
            "health_listen: port 9464 is already used by metrics_listen");
  // Port 0 picks a free port for each.
  options = Good();
  options.settings.set_listen("127.0.0.1:0");
  options.settings.set_metrics_listen("127.0.0.1:0");
  options.settings.set_health_listen("127.0.0.1:0");
  EXPECT_TRUE(Broker::CheckOptions(options).ok());
}

TEST_F(CheckOptionsTest, RejectsAMissingOrNonDirectoryDataDir) {
  BrokerOptions options = Good();
  options.settings.set_data_dir("");
  EXPECT_EQ(CheckError(options), "data_dir: must not be empty");
  WriteFile(dir_.Sub("file"), "x");
  options.settings.set_data_dir(dir_.Sub("file"));
  EXPECT_EQ(CheckError(options),
            "data_dir: " + dir_.Sub("file") + ": not a directory");
}

TEST_F(CheckOptionsTest, RejectsABackupDirectoryInsideTheData) {
  BrokerOptions options = Good();
  options.settings.set_backup_dir(options.settings.data_dir() + "/backups");
  EXPECT_THAT(CheckError(options),
              StartsWith("backup_dir: " + options.settings.backup_dir() +
                         ": must be outside data_dir"));
  options.settings.set_backup_dir(dir_.path());
  EXPECT_THAT(CheckError(options), HasSubstr("must not contain data_dir"));
  options.settings.set_backup_dir(dir_.Sub("backups"));
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
  options.settings.set_lease_seconds(0);
  options.settings.set_max_deliveries(0);
  EXPECT_EQ(CheckError(options),
            "lease_seconds: must be positive (got 0); max_deliveries: must be "
            "at least 1 (got 0)");
}

// --- CheckOptions: rules and principals --------------------------------------

TEST_F(CheckOptionsTest, ABrokenRoutingFileIsNamedWithItsLine) {
  BrokerOptions options = Good();
  options.settings.set_routing_file(dir_.Sub("routing.txtpb"));
  WriteFile(options.settings.routing_file(),
            ReadFile(absl::StrCat(kShippedConfig, "/routing.txtpb")) +
                "\nnot_a_field: 1\n");
  EXPECT_THAT(CheckError(options),
              ::testing::MatchesRegex(
                  "routing_file: " + options.settings.routing_file() +
                  ":[0-9]+:[0-9]+: .*not_a_field.*"));
}

TEST_F(CheckOptionsTest, AMissingRoutingOrCalendarFileIsNamed) {
  BrokerOptions options = Good();
  options.settings.set_routing_file(dir_.Sub("none.txtpb"));
  options.settings.set_calendar_file(dir_.Sub("nocal.txtpb"));
  EXPECT_EQ(CheckError(options), "routing_file: " + dir_.Sub("none.txtpb") +
                                     ": cannot open file; calendar_file: " +
                                     dir_.Sub("nocal.txtpb") +
                                     ": cannot open file");
}

TEST_F(CheckOptionsTest, ABrokenCalendarFileIsNamedWithItsLine) {
  BrokerOptions options = Good();
  options.settings.set_calendar_file(dir_.Sub("calendar.txtpb"));
  WriteFile(options.settings.calendar_file(),
            "time_zone: \"Europe/London\"\nwork {\n");
  EXPECT_THAT(
      CheckError(options),
      StartsWith("calendar_file: " + options.settings.calendar_file() + ":2:"));
}

TEST_F(CheckOptionsTest, ABrokenPrincipalsFileIsNamedWithItsLine) {
  BrokerOptions options = Good();
  options.settings.set_principals_file(dir_.Sub("principals.txtpb"));
  WriteFile(options.settings.principals_file(),
            "principals {\n  roles: ROLE_OPS\n}\n");
  EXPECT_THAT(CheckError(options),
              StartsWith("principals_file: " +
                         options.settings.principals_file() + ":1:"));
}

TEST_F(CheckOptionsTest, APrincipalLimitedToAnUnknownQueueIsRejected) {
  BrokerOptions options = Good();
  options.settings.set_principals_file(dir_.Sub("principals.txtpb"));
  WriteFile(options.settings.principals_file(),
            "principals {\n  identity: \"spiffe://x/t\"\n  name: \"t\"\n"
            "  roles: ROLE_TRIAGE\n  allowed_queues: \"ifd-triag\"\n}\n");
  EXPECT_EQ(CheckError(options),
            "principals_file: " + options.settings.principals_file() +
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
    options.settings.set_encryption_key_file(
        dir_.Sub("secrets/encryption.key"));
    WriteFile(options.settings.encryption_key_file(), contents, perms);
    return options;
  }
};

TEST_F(EncryptionKeyCheckTest, AcceptsAKeyAsMakeEncryptionKeyWritesIt) {
  EXPECT_TRUE(Broker::CheckOptions(WithKey(kKey)).ok())
      << Broker::CheckOptions(WithKey(kKey));
}

TEST_F(EncryptionKeyCheckTest, RejectsAMissingKeyFile) {
  BrokerOptions options = Good();
  options.settings.set_encryption_key_file(dir_.Sub("none.key"));
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
  options.settings.set_encryption_key_file(options.settings.data_dir() +
                                           "/encryption.key");
  WriteFile(options.settings.encryption_key_file(), kKey);
  EXPECT_THAT(CheckError(options),
              HasSubstr("encryption_key_file: " +
                        options.settings.encryption_key_file() +
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
    options.settings.set_listen("0.0.0.0:50051");
    options.settings.set_data_dir(dir_.Sub("data"));
    options.settings.set_tls_certificate_file(Pki("server.pem"));
    options.settings.set_tls_private_key_file(Pki("server.key"));
    options.settings.set_tls_client_ca_file(Pki("ca.pem"));
    options.settings.set_principals_file(
        absl::StrCat(kShippedConfig, "/principals.txtpb"));
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
  options.settings.set_data_dir(dir_.Sub("data"));
  EXPECT_THAT(CheckError(options),
              StartsWith("tls_certificate_file: required (with "
                         "tls_private_key_file, tls_client_ca_file and "
                         "principals_file)"));
}

TEST_F(TlsCheckTest, NeedsAllTlsFilesAndPrincipalsTogether) {
  BrokerOptions options = Tls();
  options.settings.set_tls_client_ca_file("");
  options.settings.set_principals_file("");
  const std::string error = CheckError(options);
  EXPECT_THAT(error, HasSubstr("tls_client_ca_file: required with TLS"));
  EXPECT_THAT(error, HasSubstr("principals_file: required with TLS"));
  EXPECT_THAT(error, Not(HasSubstr("tls_certificate_file")));
}

TEST_F(TlsCheckTest, RejectsAnUnreadableCertificate) {
  BrokerOptions options = Tls();
  options.settings.set_tls_certificate_file(dir_.Sub("none.pem"));
  EXPECT_EQ(
      CheckError(options),
      "tls_certificate_file: " + dir_.Sub("none.pem") + ": cannot open file");
}

TEST_F(TlsCheckTest, RejectsFilesThatAreNotPem) {
  BrokerOptions options = Tls();
  options.settings.set_tls_certificate_file(dir_.Sub("cert.pem"));
  options.settings.set_tls_private_key_file(dir_.Sub("key.pem"));
  options.settings.set_tls_client_ca_file(dir_.Sub("ca.pem"));
  WriteFile(options.settings.tls_certificate_file(), "not a certificate\n");
  WriteFile(options.settings.tls_private_key_file(), "not a key\n");
  WriteFile(options.settings.tls_client_ca_file(),
            ReadFile(Pki("server.key")));  // a key where a CA belongs
  const std::string error = CheckError(options);
  EXPECT_THAT(error, HasSubstr("tls_certificate_file: " +
                               options.settings.tls_certificate_file() +
                               ": no PEM certificate found"));
  EXPECT_THAT(error, HasSubstr("tls_private_key_file: " +
                               options.settings.tls_private_key_file() +
                               ": not a PEM private key"));
  EXPECT_THAT(error, HasSubstr("tls_client_ca_file: " +
                               options.settings.tls_client_ca_file() +
                               ": no PEM certificate found"));
  // Never the key's contents.
  EXPECT_THAT(error, Not(HasSubstr("PRIVATE KEY")));
}

TEST_F(TlsCheckTest, RejectsAKeyThatDoesNotMatchTheCertificate) {
  BrokerOptions options = Tls();
  options.settings.set_tls_private_key_file(Pki("cambs-police.key"));
  EXPECT_EQ(CheckError(options),
            "tls_private_key_file: " + Pki("cambs-police.key") +
                ": does not match the certificate in tls_certificate_file");
}

TEST_F(TlsCheckTest, RejectsAnExpiredCertificate) {
  BrokerOptions options = Tls();
  options.settings.set_tls_certificate_file(Pki("expired.pem"));
  options.settings.set_tls_private_key_file(Pki("expired.key"));
  EXPECT_EQ(CheckError(options), "tls_certificate_file: " + Pki("expired.pem") +
                                     ": the certificate has expired");
}

TEST_F(TlsCheckTest, RefusesDevelopmentModeWithTlsOrOffLoopback) {
  BrokerOptions options = Tls();
  options.settings.set_insecure_development(true);
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
