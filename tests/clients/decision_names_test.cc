// Decision names on the command line and short enum names in output.
#include "decision_names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "referral/v1/broker.pb.h"

namespace referral::clients {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseDecisionTest, AcceptsCanonicalShortAndAliasForms) {
  struct Case {
    const char* text;
    v1::Decision want;
  };
  const Case cases[] = {
      {"DECISION_EARLY_HELP", v1::DECISION_EARLY_HELP},
      {"EARLY_HELP", v1::DECISION_EARLY_HELP},
      {"early-help", v1::DECISION_EARLY_HELP},
      {"early_help", v1::DECISION_EARLY_HELP},
      {"  Early Help ", v1::DECISION_EARLY_HELP},
      {"decision-early-help", v1::DECISION_EARLY_HELP},
      {"no-further-action", v1::DECISION_NO_FURTHER_ACTION},
      {"nfa", v1::DECISION_NO_FURTHER_ACTION},
      {"information-and-advice", v1::DECISION_INFORMATION_AND_ADVICE},
      {"advice", v1::DECISION_INFORMATION_AND_ADVICE},
      {"child-in-need-assessment", v1::DECISION_CHILD_IN_NEED_ASSESSMENT},
      {"s17", v1::DECISION_CHILD_IN_NEED_ASSESSMENT},
      {"strategy-discussion", v1::DECISION_STRATEGY_DISCUSSION},
      {"S47", v1::DECISION_STRATEGY_DISCUSSION},
      {"pass-to-allocated-worker", v1::DECISION_PASS_TO_ALLOCATED_WORKER},
      {"transfer-to-another-authority",
       v1::DECISION_TRANSFER_TO_ANOTHER_AUTHORITY},
      {"transfer", v1::DECISION_TRANSFER_TO_ANOTHER_AUTHORITY},
  };
  for (const Case& c : cases) {
    absl::StatusOr<v1::Decision> d = ParseDecision(c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.status();
    EXPECT_EQ(*d, c.want) << c.text;
  }
}

TEST(ParseDecisionTest, RejectsUnknownEmptyAndUnspecified) {
  for (const char* text : {"", "   ", "DECISION_UNSPECIFIED", "unspecified",
                           "maybe", "3", "early-help-please"}) {
    absl::StatusOr<v1::Decision> d = ParseDecision(text);
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(d.status().message()),
                HasSubstr("use one of: no-further-action, "
                          "information-and-advice, early-help,"));
  }
  // A pasted paragraph is cut short and control characters escaped.
  absl::StatusOr<v1::Decision> d =
      ParseDecision(std::string(500, 'x') + "\x1b[2J");
  ASSERT_FALSE(d.ok());
  EXPECT_LT(d.status().message().size(), 400u);
  EXPECT_EQ(std::string(d.status().message()).find('\x1b'), std::string::npos);
}

TEST(DecisionShortNamesTest, ListsEveryRealDecisionInOrder) {
  EXPECT_THAT(
      DecisionShortNames(),
      ElementsAre("no-further-action", "information-and-advice", "early-help",
                  "child-in-need-assessment", "strategy-discussion",
                  "pass-to-allocated-worker", "transfer-to-another-authority"));
  // Every short name parses back to its decision.
  for (const std::string& name : DecisionShortNames()) {
    absl::StatusOr<v1::Decision> d = ParseDecision(name);
    ASSERT_TRUE(d.ok()) << name;
    EXPECT_EQ(ShortName(*d), name);
  }
}

TEST(ShortNameTest, StripsTheEnumPrefix) {
  EXPECT_EQ(ShortName(v1::PRIORITY_BAND_IMMEDIATE_RISK), "immediate-risk");
  EXPECT_EQ(ShortName(v1::REFERRAL_STATE_OUTCOME_ACKNOWLEDGED),
            "outcome-acknowledged");
  EXPECT_EQ(ShortName(v1::AGENCY_TYPE_HEALTH_GP), "health-gp");
  EXPECT_EQ(ShortName(v1::STAGE_CLAIM_EXTENDED), "claim-extended");
  EXPECT_EQ(ShortName(v1::QueueEvent::KIND_LEASE_EXPIRED), "lease-expired");
  EXPECT_EQ(ShortName(v1::CONCERN_CATEGORY_DOMESTIC_ABUSE), "domestic-abuse");
  EXPECT_EQ(ShortName(v1::DECISION_UNSPECIFIED), "unspecified");
  // A value from a newer broker that this build does not know.
  EXPECT_EQ(ShortName(static_cast<v1::Decision>(42)), "42");
}

}  // namespace
}  // namespace referral::clients
