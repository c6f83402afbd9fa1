// Fictitious referrals for load: valid identifiers, realistic size, varied
// children, and nothing that could be a real person's NHS number.
#include "fictitious_referral.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "absl/strings/match.h"
#include "cli_format.h"
#include "referral_json.h"

namespace referral::clients {
namespace {

TEST(NhsNumberTest, ModulusElevenAgreesWithTheDomainNotes) {
  for (const char* valid :
       {"9434765919", "9434765870", "4010232137", "9990000018", "9990000026",
        "9990000034", "9990000042", "9990000050"}) {
    EXPECT_TRUE(IsValidNhsNumber(valid)) << valid;
  }
  for (const char* invalid :
       {"9434765871", "9990000000", "9990000005", "9990000009", "9876544321",
        "999000001", "99900000180", "999000001x", ""}) {
    EXPECT_FALSE(IsValidNhsNumber(invalid)) << invalid;
  }
}

TEST(NhsNumberTest, TestNumbersAreValidDistinctAndInThe999Range) {
  EXPECT_EQ(TestNhsNumber(0), "9990000018");
  EXPECT_EQ(TestNhsNumber(1), "9990000026");
  std::set<std::string> seen;
  for (int64_t i = 0; i < 50000; ++i) {
    const std::string n = TestNhsNumber(i * 17);
    ASSERT_TRUE(IsValidNhsNumber(n)) << n;
    ASSERT_TRUE(absl::StartsWith(n, "999")) << n;
    seen.insert(n);
  }
  EXPECT_EQ(seen.size(), 50000u);
  EXPECT_EQ(TestNhsNumber(kTestNhsNumbers), TestNhsNumber(0));
  EXPECT_TRUE(IsValidNhsNumber(TestNhsNumber(kTestNhsNumbers - 1)));
}

TEST(MakeFictitiousReferralTest, IsAboutTwoKilobytesAndComplete) {
  const absl::Time now =
      absl::FromCivil(absl::CivilDay(2026, 1, 5), absl::UTCTimeZone());
  const v1::Referral r = MakeFictitiousReferral(12345, "loadgen", now);
  EXPECT_GE(r.ByteSizeLong(), 1700u);
  EXPECT_LE(r.ByteSizeLong(), 2600u);
  EXPECT_EQ(r.referrer().agency_id(), "loadgen");
  EXPECT_EQ(r.referrer().agency_type(), v1::AGENCY_TYPE_POLICE);
  ASSERT_EQ(r.children_size(), 2);
  for (const v1::Child& child : r.children()) {
    EXPECT_TRUE(IsValidNhsNumber(child.nhs_number()));
    EXPECT_FALSE(child.family_name().empty());
    EXPECT_NE(child.sex(), v1::SEX_UNSPECIFIED);
    const int age = 2026 - child.date_of_birth().year();
    EXPECT_GE(age, 2);
    EXPECT_LE(age, 16);
    EXPECT_GE(child.date_of_birth().day(), 1);
    EXPECT_LE(child.date_of_birth().day(), 28);
  }
  EXPECT_NE(r.children(0).nhs_number(), r.children(1).nhs_number());
  EXPECT_FALSE(r.description().empty());
  EXPECT_FALSE(r.child_voice().words().empty());
  EXPECT_EQ(r.consent().status(), v1::CONSENT_STATUS_NOT_SOUGHT);
  EXPECT_FALSE(r.consent().reason_shared_without_consent().empty());
  EXPECT_GE(r.concerns_size(), 1);
  EXPECT_LE(r.referrer_reference().size(), 64u);

  // Round-trips through the JSON the CLI reads.
  absl::StatusOr<v1::Referral> parsed = ParseReferralJson(ToJson(r));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->SerializeAsString(), r.SerializeAsString());
}

TEST(MakeFictitiousReferralTest, VariesChildrenByIndex) {
  const absl::Time now = absl::Now();
  std::set<std::string> identities;
  for (int64_t i = 0; i < 1000; ++i) {
    const v1::Referral r = MakeFictitiousReferral(i, "loadgen", now);
    const v1::Child& c = r.children(0);
    identities.insert(c.given_name() + c.family_name() +
                      std::to_string(c.date_of_birth().year()) +
                      std::to_string(c.date_of_birth().month()) +
                      std::to_string(c.date_of_birth().day()));
  }
  // Name and date of birth (the fallback match) differ for nearly all.
  EXPECT_GE(identities.size(), 990u);
}

TEST(MakeFictitiousReferralTest, ChildrenStayDistinctForMillionsOfIndexes) {
  const absl::Time now =
      absl::FromCivil(absl::CivilDay(2026, 1, 5), absl::UTCTimeZone());
  std::set<std::string> identities;
  int without_nhs_number = 0;
  // Spread over the whole range, through every period of the names.
  const int64_t samples = 20000;
  for (int64_t s = 0; s < samples; ++s) {
    const int64_t index = s * (kDistinctChildren / samples) + s % 977;
    const v1::Referral r = MakeFictitiousReferral(index, "loadgen", now);
    for (const v1::Child& c : r.children()) {
      identities.insert(absl::StrCat(
          c.given_name(), "|", c.family_name(), "|", c.date_of_birth().year(),
          "-", c.date_of_birth().month(), "-", c.date_of_birth().day()));
      if (c.nhs_number().empty()) {
        ++without_nhs_number;
      } else {
        EXPECT_TRUE(IsValidNhsNumber(c.nhs_number()));
        EXPECT_LT(index * 2, kTestNhsNumbers);
      }
    }
  }
  EXPECT_EQ(identities.size(), static_cast<size_t>(2 * samples));
  // Past the test range of NHS numbers, none is given.
  EXPECT_GT(without_nhs_number, 0);
  EXPECT_TRUE(MakeFictitiousReferral(kTestNhsNumbers, "loadgen", now)
                  .children(0)
                  .nhs_number()
                  .empty());
}

TEST(VaryChildrenTest, RewritesChildrenButKeepsUnbornDueDates) {
  v1::Referral r;
  r.add_children()->mutable_date_of_birth()->set_year(2010);
  v1::Child* unborn = r.add_children();
  unborn->mutable_expected_due_date()->set_year(2026);
  unborn->mutable_expected_due_date()->set_month(6);
  unborn->mutable_expected_due_date()->set_day(1);
  unborn->set_sex(v1::SEX_UNKNOWN);
  VaryChildren(7, &r);
  EXPECT_TRUE(IsValidNhsNumber(r.children(0).nhs_number()));
  EXPECT_NE(r.children(0).date_of_birth().year(), 2010);
  EXPECT_FALSE(r.children(1).has_date_of_birth());
  EXPECT_EQ(r.children(1).expected_due_date().month(), 6);
  EXPECT_EQ(r.children(1).sex(), v1::SEX_UNKNOWN);
  v1::Referral again = r;
  VaryChildren(8, &again);
  EXPECT_NE(again.children(0).nhs_number(), r.children(0).nhs_number());
}

}  // namespace
}  // namespace referral::clients
