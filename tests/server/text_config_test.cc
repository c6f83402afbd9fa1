// Specification of the shared config-file loader: reading a file, syntax
// errors located "source:line:column" as an editor counts, and semantic
// errors placed at the text of the field that caused them (falling back to
// the enclosing message when the field was not written).
#include "settings/text_config.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/v1/broker_config.pb.h"
#include "support/broker_process.h"

namespace referral::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

// "line:column" (1-based) of a location, or "nowhere".
std::string LineColumn(ConfigLocation at) {
  if (at.line < 0) return "nowhere";
  return std::to_string(at.line + 1) + ":" + std::to_string(at.column + 1);
}

// --- Reading the file -----------------------------------------------------

TEST(TextConfigReadTest, ReturnsTheWholeFileByteForByte) {
  referral::testing::TempDir dir;
  const std::string path = dir.Sub("text_config_read.txtpb");
  // Longer than one read buffer, with a NUL and a CR, which must survive.
  std::string contents(20000, 'x');
  contents += std::string("\0\r\nend", 6);
  {
    std::ofstream out(path, std::ios::binary);
    out << contents;
  }
  absl::StatusOr<std::string> read = ReadConfigFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, contents);
  std::filesystem::remove(path);
}

TEST(TextConfigReadTest, MissingFileIsNotFoundNamingThePath) {
  const absl::Status status =
      ReadConfigFile("/nonexistent/routing.txtpb").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Message(status), "/nonexistent/routing.txtpb: cannot open file");
}

TEST(TextConfigReadTest, DirectoryIsNotFoundRatherThanAnEmptyFile) {
  // A directory opens but cannot be read; reading it as an empty file would
  // report "required: ..." errors that send the operator the wrong way.
  referral::testing::TempDir dir;
  const absl::Status status = ReadConfigFile(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(status), HasSubstr(": cannot"));
}

// --- Parsing --------------------------------------------------------------

TEST(TextConfigParseTest, FillsTheMessage) {
  config::v1::RoutingConfig config;
  config.set_default_queue("left over");
  ASSERT_TRUE(ParseTextConfig(R"pb(in_area_districts: "PE1"
                                   queues { name: "a" })pb",
                              "test.txtpb", &config)
                  .ok());
  EXPECT_EQ(config.in_area_districts_size(), 1);
  EXPECT_EQ(config.queues(0).name(), "a");
  EXPECT_EQ(config.default_queue(), "") << "the message is cleared first";
}

TEST(TextConfigParseTest, SyntaxErrorsAreLocatedCountingFromOne) {
  config::v1::RoutingConfig config;
  const absl::Status status =
      ParseTextConfig("default_queue: \"a\"\nqueues { name \"a\" }\n",
                      "routing.txtpb", &config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), StartsWith("routing.txtpb:2:15: "));
}

TEST(TextConfigParseTest, UnknownFieldIsASyntaxError) {
  config::v1::RoutingConfig config;
  const absl::Status status =
      ParseTextConfig("default_queeu: \"a\"\n", "routing.txtpb", &config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), StartsWith("routing.txtpb:1:"));
  EXPECT_THAT(Message(status), HasSubstr("default_queeu"));
}

// --- Locating fields ------------------------------------------------------

constexpr char kRouting[] =
    "in_area_districts: [\"PE1\", \"PE2\"]\n"  // line 1: a list literal
    "queues {\n"                               // line 2
    "  name: \"a\"\n"                          // line 3
    "  due { working_days: 1 }\n"              // line 4
    "}\n"
    "queues { due {} }\n";  // line 6: no name, no clock

class TextConfigLocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        ParseTextConfig(kRouting, "routing.txtpb", &config_, &tree_).ok());
  }

  ConfigLocator File() const {
    return ConfigLocator(&tree_, config::v1::RoutingConfig::descriptor());
  }

  config::v1::RoutingConfig config_;
  ConfigParseTree tree_;
};

TEST_F(TextConfigLocatorTest, TopLevelMessageIsNowhere) {
  EXPECT_EQ(LineColumn(File().self()), "nowhere");
}

TEST_F(TextConfigLocatorTest, FindsRepeatedValuesByIndex) {
  EXPECT_EQ(LineColumn(File().Field("queues", 0)), "2:1");
  EXPECT_EQ(LineColumn(File().Field("queues", 1)), "6:1");
}

TEST_F(TextConfigLocatorTest, ValuesOfAListLiteralShareItsLocation) {
  EXPECT_EQ(LineColumn(File().Field("in_area_districts", 0)), "1:1");
  EXPECT_EQ(LineColumn(File().Field("in_area_districts", 1)), "1:1");
}

TEST_F(TextConfigLocatorTest, NestedMessagesFindTheirOwnFields) {
  const ConfigLocator queue = File().Nested("queues", 0);
  EXPECT_EQ(LineColumn(queue.self()), "2:1");
  EXPECT_EQ(LineColumn(queue.Field("name")), "3:3");
  const ConfigLocator due = queue.Nested("due");
  EXPECT_EQ(LineColumn(due.self()), "4:3");
  EXPECT_EQ(LineColumn(due.Field("working_days")), "4:9");
}

TEST_F(TextConfigLocatorTest, UnwrittenFieldFallsBackToItsMessage) {
  const ConfigLocator queue = File().Nested("queues", 1);
  EXPECT_EQ(LineColumn(queue.Field("name")), "6:1");
  EXPECT_EQ(LineColumn(queue.Nested("due").Field("working_days")), "6:10");
  EXPECT_EQ(LineColumn(File().Field("default_queue")), "nowhere");
  // A message that was never written: its fields point at the nearest
  // enclosing text.
  EXPECT_EQ(
      LineColumn(File().Nested("immediate_risk_due").Field("working_days")),
      "nowhere");
}

TEST(TextConfigLocatorWithoutTreeTest, EveryFieldIsItsMessage) {
  const ConfigLocator file(nullptr, config::v1::RoutingConfig::descriptor());
  EXPECT_EQ(LineColumn(file.Field("queues", 0)), "nowhere");
  EXPECT_EQ(LineColumn(file.Nested("queues", 0).Field("name")), "nowhere");
}

// --- Semantic errors ------------------------------------------------------

TEST(TextConfigErrorsTest, NoErrorsIsOk) {
  ConfigErrors errors("routing.txtpb");
  EXPECT_TRUE(errors.empty());
  EXPECT_TRUE(errors.ToStatus().ok());
}

TEST(TextConfigErrorsTest, PlacesEachErrorAtItsTextAndJoinsThem) {
  ConfigErrors errors("routing.txtpb");
  ConfigLocation at;
  at.line = 3;
  at.column = 2;
  errors.Add(at, "queues[0].name", "duplicate queue name \"a\"");
  errors.Add(ConfigLocation(), "default_queue", "required");
  EXPECT_FALSE(errors.empty());
  const absl::Status status = errors.ToStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(status),
            "routing.txtpb:4:3: queues[0].name: duplicate queue name \"a\"; "
            "routing.txtpb: default_queue: required");
}

TEST(TextConfigErrorsTest, WithoutASourceNamesOnlyTheField) {
  // A config built in code has no file to point into.
  ConfigErrors errors("");
  errors.Add(ConfigLocation(), "time_zone", "unknown time zone");
  EXPECT_EQ(Message(errors.ToStatus()), "time_zone: unknown time zone");
}

}  // namespace
}  // namespace referral::server
