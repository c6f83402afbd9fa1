// Splitting referral_cli's command line before any flag is set.
#include "cli_args.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace referral::clients {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// json and verbose are boolean; max and reason take values.
std::optional<bool> Kind(absl::string_view name) {
  if (name == "json" || name == "verbose") return true;
  if (name == "max" || name == "reason") return false;
  return std::nullopt;
}

TEST(SplitCommandLineTest, SeparatesFlagsFromArguments) {
  absl::StatusOr<SplitArgs> s =
      SplitCommandLine({"claim", "--max=3", "ifd-triage", "-json", "--reason",
                        "two words", "--noverbose", "-"},
                       Kind);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->positional, ElementsAre("claim", "ifd-triage", "-"));
  EXPECT_THAT(
      s->flags,
      ElementsAre(FlagArg{"max", "3"}, FlagArg{"json", "true"},
                  FlagArg{"reason", "two words"}, FlagArg{"verbose", "false"}));
  EXPECT_FALSE(s->help);
}

TEST(SplitCommandLineTest, DoubleDashEndsFlags) {
  absl::StatusOr<SplitArgs> s =
      SplitCommandLine({"release", "--", "--max=3", "-x"}, Kind);
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(s->positional, ElementsAre("release", "--max=3", "-x"));
  EXPECT_TRUE(s->flags.empty());
}

TEST(SplitCommandLineTest, ValuesMayBeEmptyOrLookLikeFlags) {
  absl::StatusOr<SplitArgs> s =
      SplitCommandLine({"--reason=", "--max", "-1", "--json=false"}, Kind);
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(s->flags, ElementsAre(FlagArg{"reason", ""}, FlagArg{"max", "-1"},
                                    FlagArg{"json", "false"}));
}

TEST(SplitCommandLineTest, Help) {
  for (const char* arg : {"-h", "--help", "-help"}) {
    absl::StatusOr<SplitArgs> s = SplitCommandLine({"stats", arg}, Kind);
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(s->help) << arg;
  }
}

TEST(SplitCommandLineTest, Errors) {
  EXPECT_THAT(
      std::string(SplitCommandLine({"--bogus"}, Kind).status().message()),
      HasSubstr("unknown flag --bogus"));
  EXPECT_THAT(std::string(SplitCommandLine({"--max"}, Kind).status().message()),
              HasSubstr("flag --max needs a value"));
  EXPECT_THAT(
      std::string(SplitCommandLine({"--nomax"}, Kind).status().message()),
      HasSubstr("unknown flag --nomax"));
  EXPECT_THAT(std::string(SplitCommandLine({"--=x"}, Kind).status().message()),
              HasSubstr("malformed flag"));
}

}  // namespace
}  // namespace referral::clients
