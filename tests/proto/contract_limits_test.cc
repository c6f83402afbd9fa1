// The contract's limits as declared in referral.proto and broker.proto
// (limits.proto's field options), read back by reflection: the numbers the
// .proto states, and no free-text field or list of a referral left
// unbounded.
#include "referral/v1/contract_limits.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "referral/v1/broker.pb.h"
#include "referral/v1/referral.pb.h"

namespace referral::v1 {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

const FieldDescriptor& Field(const Descriptor* message,
                             const std::string& name) {
  const FieldDescriptor* field = message->FindFieldByName(name);
  EXPECT_NE(field, nullptr) << message->full_name() << "." << name;
  return *field;
}

FieldLimits Limits(uint32_t max_bytes, uint32_t max_items,
                   uint32_t max_item_bytes) {
  return FieldLimits{max_bytes, max_items, max_item_bytes};
}

TEST(ContractLimitsTest, StringsCarryTheirByteLimits) {
  EXPECT_EQ(LimitsOf(Field(Referral::descriptor(), "description")),
            Limits(20000, 0, 0));
  EXPECT_EQ(LimitsOf(Field(Child::descriptor(), "given_name")),
            Limits(100, 0, 0));
  EXPECT_EQ(LimitsOf(Field(Referrer::descriptor(), "email")),
            Limits(254, 0, 0));
  EXPECT_EQ(LimitsOf(Field(Address::descriptor(), "town")), Limits(80, 0, 0));
  EXPECT_EQ(ValueByteLimit(
                Field(Consent::descriptor(), "reason_shared_without_consent")),
            2000u);
}

TEST(ContractLimitsTest, ListsCarryTheirCountsAndItemLimits) {
  EXPECT_EQ(LimitsOf(Field(Referral::descriptor(), "children")),
            Limits(0, 10, 0));
  EXPECT_EQ(LimitsOf(Field(Referral::descriptor(), "household_members")),
            Limits(0, 20, 0));
  EXPECT_EQ(LimitsOf(Field(Referral::descriptor(), "concerns")),
            Limits(0, 22, 0));
  EXPECT_EQ(LimitsOf(Field(Referral::descriptor(), "cin_factor_codes")),
            Limits(0, 30, 4));
  EXPECT_EQ(LimitsOf(Field(Address::descriptor(), "lines")), Limits(0, 4, 120));
  // Each item of a repeated string is held to max_item_bytes.
  EXPECT_EQ(ValueByteLimit(Field(Child::descriptor(), "other_names")), 100u);
  EXPECT_EQ(ValueByteLimit(Field(Referral::descriptor(), "children")), 0u);
}

TEST(ContractLimitsTest, TheServiceRequestsCarryTheirLimits) {
  EXPECT_EQ(
      LimitsOf(Field(SubmitReferralRequest::descriptor(), "idempotency_key")),
      Limits(128, 0, 0));
  EXPECT_EQ(LimitsOf(Field(SubmitReferralsRequest::descriptor(), "referrals")),
            Limits(0, 500, 0));
  EXPECT_EQ(
      ValueByteLimit(Field(RecordDecisionRequest::descriptor(), "rationale")),
      10000u);
  EXPECT_EQ(
      ValueByteLimit(Field(ReleaseReferralRequest::descriptor(), "reason")),
      500u);
}

TEST(ContractLimitsTest, FieldsWithoutALimitReadAsZero) {
  EXPECT_EQ(LimitsOf(Field(Referral::descriptor(), "immediate_risk")),
            FieldLimits());
  EXPECT_EQ(LimitsOf(Field(Child::descriptor(), "nhs_number")), FieldLimits());
  EXPECT_EQ(LimitsOf(Field(CalendarDate::descriptor(), "year")), FieldLimits());
}

// Every string and list reachable from a Referral is bounded, except the
// strings whose checked format bounds them: a field added without a limit
// fails here rather than reaching the broker unbounded.
TEST(ContractLimitsTest, EveryStringAndListOfAReferralIsBounded) {
  const std::set<std::string> bounded_by_format = {
      "referral.v1.Child.nhs_number", "referral.v1.Child.unique_pupil_number",
      "referral.v1.Address.postcode"};
  std::vector<const Descriptor*> pending = {Referral::descriptor()};
  std::set<const Descriptor*> seen;
  int checked = 0;
  while (!pending.empty()) {
    const Descriptor* message = pending.back();
    pending.pop_back();
    if (!seen.insert(message).second) continue;
    for (int i = 0; i < message->field_count(); ++i) {
      const FieldDescriptor& field = *message->field(i);
      const FieldLimits limits = LimitsOf(field);
      if (field.is_repeated()) {
        EXPECT_GT(limits.max_items, 0u) << field.full_name();
      }
      if (field.cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
          bounded_by_format.count(field.full_name()) == 0) {
        EXPECT_GT(ValueByteLimit(field), 0u) << field.full_name();
        ++checked;
      }
      if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        pending.push_back(field.message_type());
      }
    }
  }
  EXPECT_GT(checked, 30);
}

}  // namespace
}  // namespace referral::v1
