// The changes a ReferralStore commits: one command struct per kind of
// change, each naming its result type, passed to ReferralStore::Commit.
//
// Adding a kind of change (an enquiry to a partner, a handover, a link
// between people) is a command struct here with its `Result`, a NewMutation
// overload below, and its apply code in its own file in storage/src; the
// ReferralStore interface does not change.
#ifndef REFERRAL_STORAGE_COMMANDS_H_
#define REFERRAL_STORAGE_COMMANDS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "referral/v1/referral.pb.h"
#include "storage/v1/stored_referral.pb.h"

namespace referral::storage {

using StoredReferral = ::referral::storage::v1::StoredReferral;

// Called with the result once the change is durable (or has failed and left
// nothing behind). Runs on one of the store's completion threads (or at once
// on the caller's, UNAVAILABLE, when the store is closing): keep it short; it
// may call the store, but must not wait for another change to commit.
template <typename T>
using Done = absl::AnyInvocable<void(absl::StatusOr<T>) &&>;

// Who a change is audited as. When principal is empty the command's `actor`
// is recorded as the principal.
struct AuditContext {
  std::string principal;     // the authenticated principal
  std::string on_behalf_of;  // e.g. the worker or user behind a service
};

// --- Intake. -----------------------------------------------------------------

// Where routing put a referral and when it is due.
struct Placement {
  std::string queue;
  ::referral::v1::PriorityBand band = ::referral::v1::PRIORITY_BAND_STANDARD;
  absl::Time due_at;
  std::vector<std::string> notified_queues;
  std::string routing_rule;  // recorded in the history
};

// How one child of a referral can be matched with earlier referrals.
struct ChildMatchKey {
  int child_index = 0;
  // "nhs:<10 digits>" or "nd:<family>|<given>|<yyyy-mm-dd>" (normalised by
  // the caller). An empty key never matches.
  std::string key;
  std::string matched_by;  // "nhs_number" or "name_and_date_of_birth"
  // The child's NHS number when it has a valid one. Two children with the
  // same name and date of birth but different NHS numbers are different
  // children, so a name match is ignored when both numbers are known and
  // differ.
  std::string nhs_number;
};

// Earlier referrals about a submission's children, as the store counted
// them while committing it: two submissions about one child committed in
// the same group see each other.
struct EarlierReferralCounts {
  // The most earlier referrals found about any one child (0: none).
  int most_for_one_child = 0;
  // Some child's count stopped at the store's cap: there may be more.
  bool capped = false;
};

// What the caller's rule makes of those counts; stored with the referral.
struct ConcernAssessment {
  bool repeated_concern = false;
  // The band to store: the placement's, or another one.
  ::referral::v1::PriorityBand band = ::referral::v1::PRIORITY_BAND_STANDARD;
  // When `band` is not the placement's: the detail of the STAGE_PRIORITY_RAISED
  // history entry (counts only, never anything about the child).
  std::string raised_detail;
};

// The caller's rule for earlier referrals (safeguarding policy lives with
// the caller, not in the store).
struct ConcernRule {
  // Earlier referrals received at most this long before the new one (or
  // at the same time) are linked and counted.
  absl::Duration lookback = absl::ZeroDuration();
  // Given the counts and the placement's band, what to store. Runs on the
  // commit thread inside the group commit: cheap, never blocking, never
  // calling the store. Empty: the referral keeps its placement and is not
  // marked.
  std::function<ConcernAssessment(const EarlierReferralCounts&,
                                  ::referral::v1::PriorityBand)>
      assess;
};

struct SubmitResult {
  // The stored record (the original one when duplicate is true).
  StoredReferral record;
  bool duplicate = false;
};

// Stores a referral and enqueues it. A repeated (agency, idempotency key)
// with the same referral returns the original with duplicate = true.
struct SubmitCommand {
  using Result = SubmitResult;
  std::string agency_id;
  std::string idempotency_key;
  ::referral::v1::Referral referral;
  absl::Time received_at;
  Placement placement;
  std::vector<ChildMatchKey> child_keys;
  ConcernRule concern_rule;
  std::string actor;  // e.g. "agency:cambs-police"
  AuditContext audit = {};
};

// --- Triage: claims and leases. ----------------------------------------------

// Leases up to `max` ready referrals in delivery order (fewer, or none, when
// the queue holds fewer). Each record carries its new lease.
struct ClaimCommand {
  using Result = std::vector<StoredReferral>;
  std::string queue;
  int max = 1;
  absl::Duration lease = absl::Minutes(30);
  std::string worker;
  std::string actor;
  AuditContext audit = {};
};

// Moves a lease's expiry to `lease` from now; returns the new expiry.
struct ExtendCommand {
  using Result = absl::Time;
  std::string referral_id;
  std::string lease_token;
  absl::Duration lease;
  std::string actor;
  AuditContext audit = {};
};

// Gives a claimed referral back; returns its new state: QUEUED, or
// DEAD_LETTERED once its failed deliveries reach max_deliveries.
struct ReleaseCommand {
  using Result = ::referral::v1::ReferralState;
  std::string referral_id;
  std::string lease_token;
  std::string reason;
  std::string actor;
  AuditContext audit = {};
};

// Records triage's decision on a claimed referral; returns its time.
struct DecideCommand {
  using Result = absl::Time;
  std::string referral_id;
  std::string lease_token;
  ::referral::v1::Decision decision = ::referral::v1::DECISION_UNSPECIFIED;
  std::string rationale;
  std::string feedback;
  std::string actor;
  AuditContext audit = {};
};

// Returns every lease that expired by now to its queue (or to the dead
// letters); returns how many expired. The store's reaper commits this.
struct ExpireLeasesCommand {
  using Result = int;
};

// --- Outcomes and operations. ------------------------------------------------

struct AcknowledgeResult {
  absl::Time acknowledged_at;
  bool already_acknowledged = false;
};

// The referring agency acknowledges a decided referral's outcome.
struct AcknowledgeCommand {
  using Result = AcknowledgeResult;
  std::string referral_id;
  std::string agency_id;  // must be the referral's agency, else NOT_FOUND
  std::string actor;
  AuditContext audit = {};
};

// Moves a dead letter back to its queue; returns the queue.
struct RequeueCommand {
  using Result = std::string;
  std::string referral_id;
  std::string actor;
  AuditContext audit = {};
};

// Records a read of personal data in the audit trail; returns the record's
// time once it is durable, so callers answer the read only after that.
struct RecordAccessCommand {
  using Result = absl::Time;
  std::string principal;
  std::string on_behalf_of;
  // "status_read", "list_queue", "watch", "list_outcomes", "list_notices",
  // "list_dead_letters", "audit_export", ...
  std::string action;
  std::string referral_id;  // may be empty (e.g. a listing)
  std::string result;       // "OK" or the status code name
};

// --- How ReferralStore::Commit reaches each command's apply code. ------------

// One change queued for the commit thread (storage/src/mutation.h).
class Mutation;
struct MutationDeleter {
  void operator()(Mutation* mutation) const;
};
using MutationPtr = std::unique_ptr<Mutation, MutationDeleter>;

MutationPtr NewMutation(SubmitCommand command, Done<SubmitResult> done);
MutationPtr NewMutation(ClaimCommand command,
                        Done<std::vector<StoredReferral>> done);
MutationPtr NewMutation(ExtendCommand command, Done<absl::Time> done);
MutationPtr NewMutation(ReleaseCommand command,
                        Done<::referral::v1::ReferralState> done);
MutationPtr NewMutation(DecideCommand command, Done<absl::Time> done);
MutationPtr NewMutation(ExpireLeasesCommand command, Done<int> done);
MutationPtr NewMutation(AcknowledgeCommand command,
                        Done<AcknowledgeResult> done);
MutationPtr NewMutation(RequeueCommand command, Done<std::string> done);
MutationPtr NewMutation(RecordAccessCommand command, Done<absl::Time> done);

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_COMMANDS_H_
