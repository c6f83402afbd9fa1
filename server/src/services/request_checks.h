// Field checks for the triage and operations requests (the referral itself
// is checked by referral_validator). Each returns OK or one
// INVALID_ARGUMENT naming every offending field.
#ifndef REFERRAL_SERVER_REQUEST_CHECKS_H_
#define REFERRAL_SERVER_REQUEST_CHECKS_H_

#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "referral/v1/broker.pb.h"
#include "rules/names.h"  // IsValidName: the queue and agency id alphabet

namespace referral::server {

// Clamps a requested page size into 1..max, with a default for zero.
int PageSize(int requested, int default_size, int max_size);

absl::Status CheckReferralId(std::string_view referral_id);
absl::Status CheckListQueue(const v1::ListQueueRequest& request);
absl::Status CheckClaim(const v1::ClaimReferralsRequest& request,
                        absl::Duration max_lease);
absl::Status CheckExtend(const v1::ExtendClaimRequest& request,
                         absl::Duration max_lease);
absl::Status CheckRelease(const v1::ReleaseReferralRequest& request);
absl::Status CheckDecision(const v1::RecordDecisionRequest& request);
absl::Status CheckAgency(std::string_view agency);
absl::Status CheckQueueField(std::string_view queue);

}  // namespace referral::server

#endif  // REFERRAL_SERVER_REQUEST_CHECKS_H_
