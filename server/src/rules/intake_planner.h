// Turns a partner agency's SubmitReferralRequest into a storage command:
// checks every field, normalises identifiers, routes it to a queue, sets
// its due time on the working-day calendar, derives the keys that link it to
// earlier referrals about the same children, and hands the store the
// repeated-concern rule to apply to what it finds (safeguarding policy: the
// store only counts, at commit time, so that two referrals about one child
// committed together count each other).
#ifndef REFERRAL_SERVER_INTAKE_PLANNER_H_
#define REFERRAL_SERVER_INTAKE_PLANNER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "referral/v1/broker.pb.h"
#include "rules/front_door_rules.h"
#include "storage/referral_store.h"

namespace referral::server {

struct IntakePolicy {
  absl::Duration repeated_concern_window = absl::Hours(24 * 365);
  int repeated_concern_threshold = 3;
};

// The repeated-concern rule: a referral about a child with at least
// `repeated_concern_threshold` earlier referrals received within
// `repeated_concern_window` is a repeated concern, and one in the standard
// band is raised one band, the history saying why in counts only. An
// immediate-risk (or already raised) referral keeps its band.
storage::ConcernAssessment AssessRepeatedConcern(
    const IntakePolicy& policy, const storage::EarlierReferralCounts& counts,
    v1::PriorityBand band);

// INVALID_ARGUMENT listing every problem; nothing is stored in that case.
// `agency_id` is the agency the referral is recorded against.
absl::StatusOr<storage::SubmitCommand> PlanSubmission(
    const v1::SubmitReferralRequest& request, const std::string& agency_id,
    absl::Time now, const FrontDoorRules& rules, const IntakePolicy& policy);

}  // namespace referral::server

#endif  // REFERRAL_SERVER_INTAKE_PLANNER_H_
