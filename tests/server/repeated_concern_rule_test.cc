// Specification of the repeated-concern rule of intake (safeguarding
// policy, applied by the store to the earlier referrals it counts while
// committing a submission): from the threshold of earlier referrals about
// one child within the window, a referral is a repeated concern and a
// standard one is raised one band, its history saying why in counts only.
// (Moved here from tests/storage/referral_store_test.cc, where the store's
// side, the counting, stays.)
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rules/intake_planner.h"

namespace referral::server {
namespace {

storage::ConcernAssessment Assess(int most_for_one_child, bool capped,
                                  v1::PriorityBand band,
                                  const IntakePolicy& policy = {}) {
  return AssessRepeatedConcern(policy, {most_for_one_child, capped}, band);
}

TEST(RepeatedConcernRuleTest, ThirdEarlierReferralInAYearRaisesTheBand) {
  const storage::ConcernAssessment below =
      Assess(2, false, v1::PRIORITY_BAND_STANDARD);
  EXPECT_FALSE(below.repeated_concern);
  EXPECT_EQ(below.band, v1::PRIORITY_BAND_STANDARD);
  EXPECT_EQ(below.raised_detail, "");

  const storage::ConcernAssessment raised =
      Assess(3, false, v1::PRIORITY_BAND_STANDARD);
  EXPECT_TRUE(raised.repeated_concern);
  EXPECT_EQ(raised.band, v1::PRIORITY_BAND_RAISED);
  EXPECT_EQ(raised.raised_detail,
            "repeated concern: 3 earlier referrals in 365 days");
}

TEST(RepeatedConcernRuleTest, ACappedCountSaysOrMore) {
  EXPECT_EQ(Assess(100, true, v1::PRIORITY_BAND_STANDARD).raised_detail,
            "repeated concern: 100 or more earlier referrals in 365 days");
}

TEST(RepeatedConcernRuleTest, ImmediateRiskStaysImmediateRisk) {
  const storage::ConcernAssessment assessed =
      Assess(3, false, v1::PRIORITY_BAND_IMMEDIATE_RISK);
  EXPECT_TRUE(assessed.repeated_concern);
  EXPECT_EQ(assessed.band, v1::PRIORITY_BAND_IMMEDIATE_RISK);
  EXPECT_EQ(assessed.raised_detail, "");
}

TEST(RepeatedConcernRuleTest, TheThresholdAndWindowAreTheBrokersSettings) {
  const IntakePolicy policy{.repeated_concern_window = absl::Hours(24 * 65),
                            .repeated_concern_threshold = 8};
  EXPECT_FALSE(
      Assess(7, false, v1::PRIORITY_BAND_STANDARD, policy).repeated_concern);
  EXPECT_EQ(Assess(8, false, v1::PRIORITY_BAND_STANDARD, policy).raised_detail,
            "repeated concern: 8 earlier referrals in 65 days");
}

}  // namespace
}  // namespace referral::server
