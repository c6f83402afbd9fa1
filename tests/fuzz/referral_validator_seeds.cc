// Writes the seed corpus of referral_validator_fuzz: serialised
// SubmitReferralRequests made from the example referrals (fictitious data),
// each valid as it is and in a few invalid variants, so the fuzzer starts
// from real referrals rather than having to discover the wire format.
//
//   referral_validator_seeds OUT_DIR clients/examples/*.json
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/status/statusor.h"
#include "referral/v1/broker.pb.h"
#include "referral_json.h"

namespace {

bool Write(const std::string& path,
           const referral::v1::SubmitReferralRequest& request) {
  std::ofstream out(path, std::ios::binary);
  out << request.SerializeAsString();
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR REFERRAL.json...\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  for (int i = 2; i < argc; ++i) {
    absl::StatusOr<referral::v1::Referral> referral =
        referral::clients::LoadReferralJson(argv[i]);
    if (!referral.ok()) {
      std::fprintf(stderr, "%s\n",
                   std::string(referral.status().message()).c_str());
      return 1;
    }
    std::string stem = argv[i];
    stem = stem.substr(stem.find_last_of('/') + 1);
    stem = stem.substr(0, stem.rfind(".json"));

    referral::v1::SubmitReferralRequest request;
    *request.mutable_referral() = *referral;
    request.set_idempotency_key("seed-" + stem);
    bool ok = Write(dir + "/valid-" + stem, request);

    // Each variant breaks one rule, so the fuzzer holds the error paths too.
    referral::v1::SubmitReferralRequest no_key = request;
    no_key.clear_idempotency_key();
    ok = ok && Write(dir + "/invalid-" + stem + "-no-idempotency-key", no_key);

    referral::v1::SubmitReferralRequest bad_nhs = request;
    bad_nhs.mutable_referral()->mutable_children(0)->set_nhs_number(
        "999 000 0019");  // check digit wrong
    ok = ok && Write(dir + "/invalid-" + stem + "-nhs-check-digit", bad_nhs);

    referral::v1::SubmitReferralRequest bad_date = request;
    bad_date.mutable_referral()
        ->mutable_children(0)
        ->mutable_date_of_birth()
        ->set_month(13);
    ok = ok && Write(dir + "/invalid-" + stem + "-date-of-birth", bad_date);

    referral::v1::SubmitReferralRequest no_children = request;
    no_children.mutable_referral()->clear_children();
    ok = ok && Write(dir + "/invalid-" + stem + "-no-children", no_children);
    if (!ok) {
      std::fprintf(stderr, "cannot write to %s\n", dir.c_str());
      return 1;
    }
  }
  return 0;
}
