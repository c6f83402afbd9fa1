#include "support/sample_referral.h"

#include <grpcpp/grpcpp.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace referral::testing {

v1::Referral SampleReferral(const SampleReferralOptions& options) {
  v1::Referral referral;
  v1::Referrer* referrer = referral.mutable_referrer();
  referrer->set_agency_type(v1::AGENCY_TYPE_POLICE);
  referrer->set_agency_id(options.agency_id);
  referrer->set_organisation("Fictional Constabulary");
  referrer->set_name("PC Example Officer");
  referrer->set_role("Response officer");
  referrer->set_phone("01234 000000");

  v1::Child* child = referral.add_children();
  child->set_given_name(options.given_name);
  child->set_family_name(options.family_name);
  const absl::CivilDay today =
      absl::ToCivilDay(absl::Now(), absl::UTCTimeZone());
  child->mutable_date_of_birth()->set_year(static_cast<int>(today.year()) -
                                           options.age_years);
  child->mutable_date_of_birth()->set_month(3);
  child->mutable_date_of_birth()->set_day(14);
  child->set_sex(v1::SEX_FEMALE);
  child->set_nhs_number(options.nhs_number);
  child->mutable_address()->add_lines("1 Imaginary Road");
  child->mutable_address()->set_town("Peterborough");
  child->mutable_address()->set_postcode(options.postcode);

  referral.add_concerns(v1::CONCERN_CATEGORY_DOMESTIC_ABUSE);
  referral.set_immediate_risk(options.immediate_risk);
  referral.set_description(
      "Officers attended a fictitious domestic incident at the home.");
  referral.mutable_child_voice()->set_words(
      "The child said they felt scared when the shouting started.");
  referral.mutable_consent()->set_status(v1::CONSENT_STATUS_NOT_SOUGHT);
  referral.mutable_consent()->set_reason_shared_without_consent(
      "Seeking consent could place the child at increased risk.");
  referral.set_referrer_reference("TEST-INC-0001");
  return referral;
}

BrokerClients::BrokerClients(const std::string& address)
    : BrokerClients(
          grpc::CreateChannel(address, grpc::InsecureChannelCredentials())) {}

BrokerClients::BrokerClients(std::shared_ptr<grpc::Channel> channel_in)
    : channel(std::move(channel_in)),
      intake(v1::ReferralIntake::NewStub(channel)),
      triage(v1::Triage::NewStub(channel)),
      operations(v1::Operations::NewStub(channel)) {}

std::vector<std::string> ReadyIds(BrokerClients& clients,
                                  const std::string& queue) {
  std::vector<std::string> ids;
  std::string token;
  do {
    grpc::ClientContext context;
    v1::ListQueueRequest request;
    request.set_queue(queue);
    request.mutable_page()->set_page_size(500);
    request.mutable_page()->set_page_token(token);
    v1::ListQueueResponse response;
    grpc::Status status =
        clients.triage->ListQueue(&context, request, &response);
    EXPECT_TRUE(status.ok()) << queue << ": " << status.error_message();
    if (!status.ok()) break;
    for (const auto& entry : response.entries()) {
      ids.push_back(entry.referral_id());
    }
    token = response.next_page_token();
  } while (!token.empty());
  return ids;
}

}  // namespace referral::testing
