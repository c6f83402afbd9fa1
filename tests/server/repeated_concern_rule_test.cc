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

// What the rule makes of `most_for_one_child` earlier referrals (`capped`:
// there may be more) about a child of a referral placed in `band`.
storage::ConcernAssessment Assess(int most_for_one_child, bool capped,
                                  v1::PriorityBand band,
                                  const IntakePolicy& policy = {}) {
  return AssessRepeatedConcern(policy, {most_for_one_child, capped}, band);
}

void ExpectAssessed(const storage::ConcernAssessment& assessed,
                    bool repeated_concern, v1::PriorityBand band,
                    const std::string& raised_detail) {
  EXPECT_EQ(assessed.repeated_concern, repeated_concern);
  EXPECT_EQ(assessed.band, band);
  EXPECT_EQ(assessed.raised_detail, raised_detail);
}

TEST(RepeatedConcernRuleTest, ThirdEarlierReferralInAYearRaisesTheBand) {
  ExpectAssessed(Assess(2, false, v1::PRIORITY_BAND_STANDARD), false,
                 v1::PRIORITY_BAND_STANDARD, "");
  ExpectAssessed(Assess(3, false, v1::PRIORITY_BAND_STANDARD), true,
                 v1::PRIORITY_BAND_RAISED,
                 "repeated concern: 3 earlier referrals in 365 days");
}

TEST(RepeatedConcernRuleTest, ACappedCountSaysOrMore) {
  ExpectAssessed(Assess(100, true, v1::PRIORITY_BAND_STANDARD), true,
                 v1::PRIORITY_BAND_RAISED,
                 "repeated concern: 100 or more earlier referrals in 365 days");
}

TEST(RepeatedConcernRuleTest, ImmediateRiskStaysImmediateRisk) {
  ExpectAssessed(Assess(3, false, v1::PRIORITY_BAND_IMMEDIATE_RISK), true,
                 v1::PRIORITY_BAND_IMMEDIATE_RISK, "");
}

TEST(RepeatedConcernRuleTest, TheThresholdAndWindowAreTheBrokersSettings) {
  const IntakePolicy policy{.repeated_concern_window = absl::Hours(24 * 65),
                            .repeated_concern_threshold = 8};
  ExpectAssessed(Assess(7, false, v1::PRIORITY_BAND_STANDARD, policy), false,
                 v1::PRIORITY_BAND_STANDARD, "");
  ExpectAssessed(Assess(8, false, v1::PRIORITY_BAND_STANDARD, policy), true,
                 v1::PRIORITY_BAND_RAISED,
                 "repeated concern: 8 earlier referrals in 65 days");
}

}  // namespace
}  // namespace referral::server
