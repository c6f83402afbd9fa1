// The fictitious sample referrals in clients/examples are documentation and
// demo input: they must parse as referral.v1.Referral JSON and pass intake
// validation today (their dates of birth are chosen to stay valid for years).
#include <fstream>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "referral/v1/broker.pb.h"
#include "referral/v1/referral.pb.h"
#include "rules/referral_validator.h"

namespace referral::server {
namespace {

using ::referral::v1::Referral;
using ::referral::v1::SubmitReferralRequest;
using ::testing::StartsWith;

Referral LoadExample(const std::string& name) {
  const std::string path =
      std::string(REFERRAL_SOURCE_DIR) + "/clients/examples/" + name;
  std::ifstream file(path);
  EXPECT_TRUE(file.good()) << "cannot open " << path;
  std::stringstream json;
  json << file.rdbuf();
  Referral referral;
  const auto status =
      google::protobuf::util::JsonStringToMessage(json.str(), &referral);
  EXPECT_TRUE(status.ok()) << path << ": " << status;
  return referral;
}

void ExpectValid(const Referral& referral) {
  SubmitReferralRequest request;
  *request.mutable_referral() = referral;
  request.set_idempotency_key("example-referrals-test");
  EXPECT_TRUE(ValidateSubmitReferralRequest(request, absl::Now()).ok())
      << ValidateSubmitReferralRequest(request, absl::Now());
}

// Real NHS numbers must never appear in samples: only the 999 test range.
void ExpectOnlyTestRangeNhsNumbers(const Referral& referral) {
  for (const auto& child : referral.children()) {
    if (!child.nhs_number().empty()) {
      EXPECT_THAT(child.nhs_number(), StartsWith("999"));
    }
  }
}

TEST(ExampleReferralsTest, PoliceDomesticAbuse) {
  const Referral referral = LoadExample("police-domestic-abuse.json");
  ExpectValid(referral);
  ExpectOnlyTestRangeNhsNumbers(referral);
  EXPECT_EQ(referral.referrer().agency_id(), "cambs-police");
  EXPECT_EQ(referral.referrer().agency_type(),
            referral::v1::AGENCY_TYPE_POLICE);
  EXPECT_EQ(referral.children_size(), 2);
  EXPECT_EQ(referral.consent().status(),
            referral::v1::CONSENT_STATUS_NOT_SOUGHT);
  EXPECT_FALSE(referral.child_voice().words().empty());
  EXPECT_EQ(referral.referrer_reference(), "CAMBS-2026-INC-0001");
}

TEST(ExampleReferralsTest, SchoolNeglect) {
  const Referral referral = LoadExample("school-neglect.json");
  ExpectValid(referral);
  EXPECT_EQ(referral.referrer().agency_id(), "peterborough-school-1");
  EXPECT_EQ(referral.referrer().agency_type(),
            referral::v1::AGENCY_TYPE_SCHOOL);
  ASSERT_EQ(referral.children_size(), 1);
  EXPECT_FALSE(referral.children(0).unique_pupil_number().empty());
  EXPECT_EQ(referral.consent().status(), referral::v1::CONSENT_STATUS_OBTAINED);
}

TEST(ExampleReferralsTest, HospitalImmediateRisk) {
  const Referral referral = LoadExample("hospital-immediate-risk.json");
  ExpectValid(referral);
  ExpectOnlyTestRangeNhsNumbers(referral);
  EXPECT_EQ(referral.referrer().agency_id(), "nwangliaft-hospital");
  EXPECT_EQ(referral.referrer().agency_type(),
            referral::v1::AGENCY_TYPE_HEALTH_HOSPITAL);
  EXPECT_TRUE(referral.immediate_risk());
}

}  // namespace
}  // namespace referral::server
