// Specification of referral_broker's command line: every setting of
// BrokerSettings and every field of BrokerCommand is a flag of the same
// name, read in the syntax absl's flags accept (so that the broker's
// documented command lines keep working), only the flags given are present
// (a flag given with its default value still overrides the settings file),
// mistakes are refused naming the flag, and --help lists every flag with its
// default and meaning from its declaration.
#include "settings/broker_command_line.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "settings/broker_settings.h"
#include "settings/declared_settings.h"

namespace referral::server {
namespace {

using config::v1::BrokerCommand;
using config::v1::BrokerSettings;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using ::testing::HasSubstr;

BrokerCommandLine Parse(const std::vector<std::string>& args) {
  absl::StatusOr<BrokerCommandLine> line = ParseBrokerCommandLine(args);
  EXPECT_TRUE(line.ok()) << line.status();
  return line.ok() ? *line : BrokerCommandLine();
}

std::string Error(const std::vector<std::string>& args) {
  absl::StatusOr<BrokerCommandLine> line = ParseBrokerCommandLine(args);
  EXPECT_FALSE(line.ok()) << "accepted";
  EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(line.status().message());
}

TEST(BrokerCommandLineTest, NothingGivenIsNothingPresent) {
  const BrokerCommandLine line = Parse({});
  EXPECT_EQ(line.settings.ByteSizeLong(), 0u);
  EXPECT_EQ(line.command.ByteSizeLong(), 0u);
}

TEST(BrokerCommandLineTest, ReadsNameEqualsValueWithOneOrTwoDashes) {
  const BrokerCommandLine line =
      Parse({"--listen=0.0.0.0:1", "-data_dir=/d", "--lease_seconds=60",
             "--rate_limit_per_second=0.25", "--config_file=/etc/b.txtpb"});
  EXPECT_EQ(line.settings.listen(), "0.0.0.0:1");
  EXPECT_EQ(line.settings.data_dir(), "/d");
  EXPECT_EQ(line.settings.lease_seconds(), 60);
  EXPECT_EQ(line.settings.rate_limit_per_second(), 0.25);
  EXPECT_EQ(line.command.config_file(), "/etc/b.txtpb");
  EXPECT_FALSE(line.settings.has_max_lease_seconds());
}

TEST(BrokerCommandLineTest, ReadsAValueInTheNextArgument) {
  const BrokerCommandLine line =
      Parse({"--listen", "0.0.0.0:1", "--lease_seconds", "60", "--config_file",
             "b.txtpb", "--data_dir", "-odd-name"});
  EXPECT_EQ(line.settings.listen(), "0.0.0.0:1");
  EXPECT_EQ(line.settings.lease_seconds(), 60);
  EXPECT_EQ(line.command.config_file(), "b.txtpb");
  EXPECT_EQ(line.settings.data_dir(), "-odd-name");
}

TEST(BrokerCommandLineTest, ReadsTrueOrFalseFlagsAsAbslDoes) {
  EXPECT_TRUE(
      Parse({"--insecure_development"}).settings.insecure_development());
  for (const char* spelling :
       {"--noinsecure_development", "--insecure_development=false",
        "--insecure_development=0", "--insecure_development=no",
        "-noinsecure_development"}) {
    const BrokerCommandLine line = Parse({spelling});
    EXPECT_TRUE(line.settings.has_insecure_development()) << spelling;
    EXPECT_FALSE(line.settings.insecure_development()) << spelling;
  }
  EXPECT_TRUE(
      Parse({"--insecure_development=true"}).settings.insecure_development());
  EXPECT_TRUE(
      Parse({"--insecure_development=yes"}).settings.insecure_development());
}

TEST(BrokerCommandLineTest, CheckConfigIsAlsoSpeltWithAHyphen) {
  for (const char* spelling : {"--check-config", "--check_config",
                               "-check-config", "--check-config=true"}) {
    EXPECT_TRUE(Parse({spelling}).command.check_config()) << spelling;
  }
}

// What makes "a flag given with its default value overrides the file"
// possible: presence, not the value, says what was given.
TEST(BrokerCommandLineTest, AFlagGivenWithItsDefaultValueIsPresent) {
  const BrokerCommandLine line = Parse(
      {"--lease_seconds=1800", "--health_listen=", "--noinsecure_development"});
  EXPECT_TRUE(line.settings.has_lease_seconds());
  EXPECT_TRUE(line.settings.has_health_listen());
  EXPECT_EQ(line.settings.health_listen(), "");
  EXPECT_TRUE(line.settings.has_insecure_development());
}

TEST(BrokerCommandLineTest, TheLastValueOfAFlagGivenTwiceWins) {
  EXPECT_EQ(Parse({"--lease_seconds=1", "--lease_seconds=2"})
                .settings.lease_seconds(),
            2);
}

TEST(BrokerCommandLineTest, DoubleDashEndsTheFlags) {
  EXPECT_TRUE(
      Parse({"--insecure_development", "--"}).settings.insecure_development());
  EXPECT_THAT(Error({"--", "--listen=x:1"}),
              HasSubstr("unexpected argument \"--listen=x:1\""));
}

TEST(BrokerCommandLineTest, RefusesUnknownFlagsNamingThem) {
  EXPECT_EQ(Error({"--bogus"}), "unknown flag --bogus");
  EXPECT_EQ(Error({"--lease_second=5"}), "unknown flag --lease_second");
  // Only a true-or-false flag has a --no form, and it takes no value.
  EXPECT_EQ(Error({"--nolisten"}), "unknown flag --nolisten");
  EXPECT_EQ(Error({"--noinsecure_development=true"}),
            "unknown flag --noinsecure_development");
}

TEST(BrokerCommandLineTest, RefusesAMissingOrWrongValueNamingTheFlag) {
  EXPECT_EQ(Error({"--lease_seconds"}),
            "flag --lease_seconds needs a value (--lease_seconds=VALUE)");
  EXPECT_EQ(Error({"--lease_seconds=abc"}),
            "--lease_seconds: \"abc\" is not a whole number");
  EXPECT_EQ(Error({"--lease_seconds=99999999999"}),
            "--lease_seconds: \"99999999999\" is not a whole number");
  EXPECT_EQ(Error({"--rate_limit_burst=lots"}),
            "--rate_limit_burst: \"lots\" is not a number");
  EXPECT_EQ(Error({"--insecure_development="}),
            "--insecure_development: \"\" is not true or false");
  EXPECT_EQ(Error({"--check-config=maybe"}),
            "--check_config: \"maybe\" is not true or false");
}

TEST(BrokerCommandLineTest, RefusesArgumentsThatAreNotFlags) {
  // absl would have ignored them; a stray word is more likely a mistake
  // ("--insecure_development false") than something meant.
  EXPECT_THAT(Error({"--insecure_development", "false"}),
              HasSubstr("unexpected argument \"false\""));
  EXPECT_THAT(Error({"-"}), HasSubstr("unexpected argument \"-\""));
  EXPECT_THAT(Error({"--=x"}), HasSubstr("malformed flag"));
}

// Each field of both messages is a flag of the same name, and --help shows
// it with its default and its help line.
TEST(BrokerCommandLineTest, EveryFieldIsAFlagListedInTheHelp) {
  const std::string usage = BrokerUsage();
  for (const Descriptor* type :
       {BrokerSettings::descriptor(), BrokerCommand::descriptor()}) {
    for (int i = 0; i < type->field_count(); ++i) {
      const FieldDescriptor* field = type->field(i);
      const std::string text =
          field->cpp_type() == FieldDescriptor::CPPTYPE_STRING
              ? "text"
              : DeclaredSetting(field).default_();
      const BrokerCommandLine line =
          Parse({absl::StrCat("--", field->name(), "=", text)});
      const google::protobuf::Message& message =
          type == BrokerSettings::descriptor()
              ? static_cast<const google::protobuf::Message&>(line.settings)
              : line.command;
      EXPECT_TRUE(message.GetReflection()->HasField(message, field))
          << field->name();
      EXPECT_EQ(SettingText(message, field), text) << field->name();
      EXPECT_THAT(usage, HasSubstr(absl::StrCat("\n  --", field->name())))
          << field->name();
      EXPECT_THAT(
          usage,
          HasSubstr(absl::StrCat(
              "default: ",
              absl::StrReplaceAll(DefaultDescription(field), {{"`", ""}}),
              ")\n")))
          << field->name();
    }
  }
}

TEST(BrokerCommandLineTest, TheHelpShowsDefaultsAndMeaningsInPlainText) {
  const std::string usage = BrokerUsage();
  EXPECT_THAT(usage, HasSubstr("  --lease_seconds=VALUE  (a whole number; "
                               "default: 1800)\n      Lease of a claim"));
  EXPECT_THAT(usage,
              HasSubstr("  --listen=VALUE  (default: 127.0.0.1:50051)\n"));
  EXPECT_THAT(usage, HasSubstr("  --insecure_development  (true or false; "
                               "default: false)\n"));
  EXPECT_THAT(usage, HasSubstr("  --health_listen=VALUE  (default: empty "
                               "(off))\n"));
  EXPECT_THAT(usage, HasSubstr("From 1 to 60000."));
  // Markdown code spans are for the docs page, not the terminal.
  EXPECT_THAT(usage, ::testing::Not(HasSubstr("`")));
}

}  // namespace
}  // namespace referral::server
