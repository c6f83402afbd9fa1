// How stored referrals are shown through the API: the status and history an
// agency sees, the queue entry triage lists (initials and ages, never full
// names), the outcome fed back to the referrer, the dead letter ops see.
#ifndef REFERRAL_SERVER_REFERRAL_VIEWS_H_
#define REFERRAL_SERVER_REFERRAL_VIEWS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "base/timestamps.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "referral/v1/broker.pb.h"
#include "storage/referral_store.h"

namespace referral::server {

// Short lower-case names for metric labels and log fields: "police",
// "health_gp"; "early_help", "no_further_action".
std::string AgencyTypeLabel(v1::AgencyType type);
std::string DecisionLabel(v1::Decision decision);

// Whether the decision is (or was) late: undecided past its due time, or
// decided after it.
bool IsOverdue(const storage::StoredReferral& record, absl::Time now);

v1::GetReferralStatusResponse ToStatusResponse(
    const storage::StoredReferral& record, absl::Time now);

// `now` dates the children's ages (in Europe/London civil time).
v1::QueueEntry ToQueueEntry(const storage::StoredReferral& record,
                            absl::Time now);

v1::Outcome ToOutcome(const storage::StoredReferral& record);

v1::DeadLetter ToDeadLetter(const storage::StoredReferral& record);

// What a notified queue sees of a referral: its queue entry, current state
// and the work queue holding it.
v1::Notice ToNotice(const storage::StoredReferral& record, absl::Time now);

// Lease, content and queue entry. Links to earlier referrals are added by
// the caller, which can look up their decisions.
v1::ClaimedReferral ToClaimedReferral(const storage::StoredReferral& record,
                                      absl::Time now);

v1::SubmitReferralResponse ToSubmitResponse(
    const storage::SubmitResult& result);

}  // namespace referral::server

#endif  // REFERRAL_SERVER_REFERRAL_VIEWS_H_
