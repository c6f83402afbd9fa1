#include "rules/intake_planner.h"

#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "rules/child_matching.h"
#include "rules/identifiers.h"
#include "rules/referral_validator.h"

namespace referral::server {

storage::ConcernAssessment AssessRepeatedConcern(
    const IntakePolicy& policy, const storage::EarlierReferralCounts& counts,
    v1::PriorityBand band) {
  storage::ConcernAssessment assessed{
      .repeated_concern = false, .band = band, .raised_detail = ""};
  if (policy.repeated_concern_threshold <= 0 ||
      counts.most_for_one_child < policy.repeated_concern_threshold) {
    return assessed;
  }
  assessed.repeated_concern = true;
  if (band == v1::PRIORITY_BAND_STANDARD) {
    assessed.band = v1::PRIORITY_BAND_RAISED;
    // Counts only: never anything about the child.
    assessed.raised_detail = absl::StrFormat(
        "repeated concern: %d%s earlier referrals in %d days",
        counts.most_for_one_child, counts.capped ? " or more" : "",
        absl::ToInt64Hours(policy.repeated_concern_window) / 24);
  }
  return assessed;
}

absl::StatusOr<storage::SubmitCommand> PlanSubmission(
    const v1::SubmitReferralRequest& request, const std::string& agency_id,
    absl::Time now, const FrontDoorRules& rules, const IntakePolicy& policy) {
  RETURN_IF_ERROR(ValidateSubmitReferralRequest(request, now));

  storage::SubmitCommand command;
  command.agency_id = agency_id;
  command.idempotency_key = request.idempotency_key();
  command.referral = request.referral();
  NormaliseReferral(&command.referral);
  command.referral.mutable_referrer()->set_agency_id(agency_id);
  command.received_at = now;
  command.actor = "agency:" + agency_id;

  const v1::Referral& referral = command.referral;
  RoutingInput input;
  input.agency_type = referral.referrer().agency_type();
  for (int concern : referral.concerns()) {
    input.concerns.push_back(static_cast<v1::ConcernCategory>(concern));
  }
  input.immediate_risk = referral.immediate_risk();
  for (const v1::Child& child : referral.children()) {
    input.child_postcodes.push_back(child.address().postcode());
  }
  input.inside_working_hours = rules.calendar->IsWorkingTime(now);
  RouteDecision route = rules.routing->Route(input);

  storage::Placement& placement = command.placement;
  ASSIGN_OR_RETURN(placement.due_at,
                   rules.routing->DueAt(route.queue, referral.immediate_risk(),
                                        now, *rules.calendar));
  placement.queue = std::move(route.queue);
  placement.notified_queues = std::move(route.notified_queues);
  placement.routing_rule = std::move(route.rule);
  placement.band = referral.immediate_risk() ? v1::PRIORITY_BAND_IMMEDIATE_RISK
                                             : v1::PRIORITY_BAND_STANDARD;

  for (const ChildKey& key : AllChildMatchKeys(referral)) {
    // The referral is normalised: a valid NHS number has no spaces.
    const std::string& nhs = referral.children(key.child_index).nhs_number();
    command.child_keys.push_back(storage::ChildMatchKey{
        .child_index = key.child_index,
        .key = key.key,
        .matched_by = key.matched_by,
        .nhs_number = IsValidNhsNumber(nhs) ? nhs : "",
    });
  }
  command.concern_rule = storage::ConcernRule{
      .lookback = policy.repeated_concern_window,
      .assess = [policy](const storage::EarlierReferralCounts& counts,
                         v1::PriorityBand band) {
        return AssessRepeatedConcern(policy, counts, band);
      }};
  return command;
}

}  // namespace referral::server
