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

// The field `name` of `message`; fails the test when there is none.
const FieldDescriptor* Field(const Descriptor* message, const char* name) {
  const FieldDescriptor* field = message->FindFieldByName(name);
  EXPECT_NE(field, nullptr) << message->full_name() << "." << name;
  return field;
}

// A limit as referral.proto or broker.proto states it.
struct Declared {
  const Descriptor* message;
  const char* field;
  FieldLimits limits;  // max_bytes, max_items, max_item_bytes
};

TEST(ContractLimitsTest, FieldsCarryTheLimitsTheProtoStates) {
  const Declared kDeclared[] = {
      // Strings and their byte limits.
      {Referral::descriptor(), "description", {20000, 0, 0}},
      {Child::descriptor(), "given_name", {100, 0, 0}},
      {Referrer::descriptor(), "email", {254, 0, 0}},
      {Address::descriptor(), "town", {80, 0, 0}},
      {Consent::descriptor(), "reason_shared_without_consent", {2000, 0, 0}},
      // Lists, their counts and their items' byte limits.
      {Referral::descriptor(), "children", {0, 10, 0}},
      {Referral::descriptor(), "household_members", {0, 20, 0}},
      {Referral::descriptor(), "concerns", {0, 22, 0}},
      {Referral::descriptor(), "cin_factor_codes", {0, 30, 4}},
      {Address::descriptor(), "lines", {0, 4, 120}},
      {Child::descriptor(), "other_names", {0, 5, 100}},
      // The service's requests.
      {SubmitReferralRequest::descriptor(), "idempotency_key", {128, 0, 0}},
      {SubmitReferralsRequest::descriptor(), "referrals", {0, 500, 0}},
      {RecordDecisionRequest::descriptor(), "rationale", {10000, 0, 0}},
      {ReleaseReferralRequest::descriptor(), "reason", {500, 0, 0}},
  };
  for (const Declared& declared : kDeclared) {
    const FieldDescriptor* field = Field(declared.message, declared.field);
    if (field == nullptr) continue;
    EXPECT_EQ(LimitsOf(*field), declared.limits) << field->full_name();
  }
}

TEST(ContractLimitsTest, EachValueIsHeldToItsOwnByteLimit) {
  // A singular string to max_bytes, each item of a repeated one to
  // max_item_bytes; a list of messages has none.
  EXPECT_EQ(ValueByteLimit(*Field(Referral::descriptor(), "description")),
            20000u);
  EXPECT_EQ(ValueByteLimit(*Field(Child::descriptor(), "other_names")), 100u);
  EXPECT_EQ(ValueByteLimit(*Field(Referral::descriptor(), "children")), 0u);
}

TEST(ContractLimitsTest, FieldsWithoutALimitReadAsZero) {
  EXPECT_EQ(LimitsOf(*Field(Referral::descriptor(), "immediate_risk")),
            FieldLimits());
  EXPECT_EQ(LimitsOf(*Field(Child::descriptor(), "nhs_number")), FieldLimits());
  EXPECT_EQ(LimitsOf(*Field(CalendarDate::descriptor(), "year")),
            FieldLimits());
}

// Every string and list reachable from a Referral is bounded, except the
// strings whose checked format bounds them: a field added without a limit
// fails here rather than reaching the broker unbounded.
TEST(ContractLimitsTest, EveryStringAndListOfAReferralIsBounded) {
  const std::set<std::string> bounded_by_format = {
      "referral.v1.Child.nhs_number", "referral.v1.Child.unique_pupil_number",
      "referral.v1.Address.postcode", "referral.v1.Referrer.agency_id"};
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
