// Fuzzes intake validation (server/src/rules/referral_validator.h) with what an
// agency can actually send: the bytes are a serialised SubmitReferralRequest,
// so the fuzzer explores referrals rather than protobuf's wire-format parser.
// Bytes that do not parse are skipped; gRPC would have rejected them first.
//
// Properties, beyond "never crash, no memory error, no UB":
// - a rejection is INVALID_ARGUMENT (the contract's only refusal code here);
// - a referral that validates still validates once normalised, and
//   normalising it again changes nothing: what is stored is stable and
//   idempotent resubmission compares equal.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "referral/v1/broker.pb.h"
#include "rules/referral_validator.h"

namespace {

void Fail(const char* what) {
  // Only the property: the input is in the crash file, never in the log.
  std::fprintf(stderr, "referral_validator_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using referral::server::NormaliseReferral;
  using referral::server::ValidateSubmitReferralRequest;

  referral::v1::SubmitReferralRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;

  // A fixed "today", so a crash reproduces whatever the date; after the
  // newborn of clients/examples/hospital-immediate-risk.json was born, so
  // every example referral is valid on it.
  static const absl::Time kNow = absl::FromCivil(
      absl::CivilSecond(2026, 11, 20, 10, 30, 0), absl::UTCTimeZone());

  const absl::Status status = ValidateSubmitReferralRequest(request, kNow);
  if (!status.ok()) {
    if (status.code() != absl::StatusCode::kInvalidArgument) {
      Fail("rejection is not INVALID_ARGUMENT");
    }
    return 0;
  }

  referral::v1::SubmitReferralRequest normalised = request;
  NormaliseReferral(normalised.mutable_referral());
  if (!ValidateSubmitReferralRequest(normalised, kNow).ok()) {
    Fail("a valid referral no longer validates once normalised");
  }
  referral::v1::Referral twice = normalised.referral();
  NormaliseReferral(&twice);
  if (twice.SerializeAsString() != normalised.referral().SerializeAsString()) {
    Fail("normalising a normalised referral changed it");
  }
  return 0;
}
