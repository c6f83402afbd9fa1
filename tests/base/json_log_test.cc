// Specification of the JSON-lines log: one object per line with time,
// level and event first, fields in order, every line valid JSON whatever
// the bytes of a field, and lines below the level dropped.
#include "base/json_log.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace referral {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

class JsonLogTest : public ::testing::Test {
 protected:
  void TearDown() override { SetLogLevel(LogLevel::kInfo); }
};

TEST_F(JsonLogTest, ALineHoldsTimeLevelEventThenTheFieldsInOrder) {
  ::testing::internal::CaptureStderr();
  LogEvent(LogLevel::kWarning, "referral_rejected",
           {{"agency", "cambs-police"}, {"code", "INVALID_ARGUMENT"}});
  const std::vector<std::string> lines =
      Lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 1u);
  const nlohmann::ordered_json line = nlohmann::ordered_json::parse(lines[0]);
  std::vector<std::string> keys;
  for (const auto& item : line.items()) keys.push_back(item.key());
  EXPECT_THAT(keys, ElementsAre("time", "level", "event", "agency", "code"));
  EXPECT_EQ(line["level"], "warning");
  EXPECT_EQ(line["event"], "referral_rejected");
  EXPECT_EQ(line["agency"], "cambs-police");
  EXPECT_THAT(line["time"].get<std::string>(), HasSubstr("T"));
}

TEST_F(JsonLogTest, ControlCharactersAndInvalidUtf8StillMakeValidJson) {
  ::testing::internal::CaptureStderr();
  const std::string awkward =
      std::string("quote\" back\\ nl\n tab\t nul") + '\0' + " bad\xff\xfe end";
  LogEvent(LogLevel::kInfo, "awkward", {{"reason", awkward}});
  const std::vector<std::string> lines =
      Lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 1u) << "a newline in a field split the line";
  const nlohmann::json line = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(line["reason"], std::string("quote\" back\\ nl\n tab\t nul") +
                                '\0' + " bad\xEF\xBF\xBD\xEF\xBF\xBD end");
}

TEST_F(JsonLogTest, ValidUtf8IsKeptAsItIs) {
  ::testing::internal::CaptureStderr();
  LogEvent(LogLevel::kInfo, "queue",
           {{"queue", "caf\xC3\xA9-\xF0\x9F\x98\x80"}});
  const nlohmann::json line = nlohmann::json::parse(
      Lines(::testing::internal::GetCapturedStderr()).at(0));
  EXPECT_EQ(line["queue"], "caf\xC3\xA9-\xF0\x9F\x98\x80");
}

TEST_F(JsonLogTest, LinesBelowTheLevelAreDropped) {
  SetLogLevel(LogLevel::kWarning);
  ::testing::internal::CaptureStderr();
  LogEvent(LogLevel::kInfo, "dropped");
  {
    LogLines lines;
    lines.Add(LogLevel::kDebug, "dropped_too");
    lines.Add(LogLevel::kError, "kept");
  }
  const std::vector<std::string> lines =
      Lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(lines[0])["event"], "kept");
}

TEST_F(JsonLogTest, LogLinesWriteNothingUntilFlushed) {
  ::testing::internal::CaptureStderr();
  LogLines lines;
  lines.Add(LogLevel::kInfo, "first");
  lines.Add(LogLevel::kInfo, "second");
  // Nothing is written before the flush: a batch's lines go out together.
  const std::string before = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(before, IsEmpty());
  ::testing::internal::CaptureStderr();
  lines.Flush();
  const std::vector<std::string> after =
      Lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(after[0])["event"], "first");
  EXPECT_EQ(nlohmann::json::parse(after[1])["event"], "second");
}

TEST_F(JsonLogTest, LevelNamesParse) {
  LogLevel level = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("debug", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("error", &level));
  EXPECT_EQ(level, LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("verbose", &level));
  EXPECT_EQ(level, LogLevel::kError);
}

}  // namespace
}  // namespace referral
