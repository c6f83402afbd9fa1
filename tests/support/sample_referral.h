// Test support: valid, obviously fictitious referrals (test-range NHS
// numbers, made-up names) and clients for a broker on loopback.
#ifndef REFERRAL_TESTS_SUPPORT_SAMPLE_REFERRAL_H_
#define REFERRAL_TESTS_SUPPORT_SAMPLE_REFERRAL_H_

#include <memory>
#include <string>
#include <vector>

#include "referral/v1/broker.grpc.pb.h"
#include "referral/v1/referral.pb.h"

namespace referral::testing {

struct SampleReferralOptions {
  std::string agency_id = "cambs-police";
  bool immediate_risk = false;
  // One of the published test-range numbers (never issued) by default.
  std::string nhs_number = "9990000018";
  std::string given_name = "Testchild";
  std::string family_name = "Fictitious";
  std::string postcode = "PE1 2AB";
  int age_years = 8;
};

v1::Referral SampleReferral(const SampleReferralOptions& options = {});

// Stubs of the three services on one insecure loopback channel.
struct BrokerClients {
  explicit BrokerClients(const std::string& address);
  explicit BrokerClients(std::shared_ptr<grpc::Channel> channel);
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ReferralIntake::Stub> intake;
  std::unique_ptr<v1::Triage::Stub> triage;
  std::unique_ptr<v1::Operations::Stub> operations;
};

// The ids listed as ready in `queue`, every page, in delivery order.
std::vector<std::string> ReadyIds(BrokerClients& clients,
                                  const std::string& queue);

}  // namespace referral::testing

#endif  // REFERRAL_TESTS_SUPPORT_SAMPLE_REFERRAL_H_
