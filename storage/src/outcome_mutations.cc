// Decisions and what follows them: DecideCommand (with the decision-stats
// index it feeds and prunes), AcknowledgeCommand and RequeueCommand, applied
// on the commit thread (see records.h for the index entries they move).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "key_codec.h"
#include "mutation.h"
#include "record_util.h"
#include "records.h"

namespace referral::storage {
namespace {

using Kind = CommittedChange::Kind;

// Decision-stat entries older than the window deleted per decision: more
// than the one each decision adds, so the index catches up after a pause or
// a shorter window, while each decision's batch stays small.
constexpr size_t kMaxPrunedPerDecision = 8;

// Deletes up to a few decision-stat entries of `name` decided before
// now - decision_stats_window, from the queue's prune mark on, so the index
// stays about one window long at a bounded cost per decision.
absl::Status PruneDecisionStats(Group& group, QueueState& queue,
                                const std::string& name, absl::Time now) {
  // Entries decided before the cutoff are outside every later window (the
  // clock moves forward), so nothing reads them again.
  const std::string bound = keys::DecisionStatKeyBound(
      name, ToMicros(now - group.options().decision_stats_window));
  const std::string from = queue.decisions_pruned_to.empty()
                               ? keys::NamePrefix(name)
                               : queue.decisions_pruned_to;
  if (from >= bound) return absl::OkStatus();
  // Collected before the batch changes: its iterator must not see its own
  // deletions while it moves.
  std::vector<std::string> old;
  {
    std::unique_ptr<rocksdb::Iterator> it =
        group.NewIterator(kDecisions, &bound);
    for (it->Seek(from); it->Valid() && it->key().compare(bound) < 0 &&
                         old.size() < kMaxPrunedPerDecision;
         it->Next()) {
      old.push_back(it->key().ToString());
    }
    if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  }
  for (const std::string& key : old) {
    RETURN_IF_ERROR(
        FromBatch(group.batch().SingleDelete(group.cf(kDecisions), key)));
  }
  // The next prune starts after what was deleted (or at the cutoff, when
  // nothing older is left), never stepping over these tombstones again.
  std::string mark =
      old.size() < kMaxPrunedPerDecision ? bound : keys::Successor(old.back());
  group.undo().Record([&queue, previous = queue.decisions_pruned_to]() mutable {
    queue.decisions_pruned_to = std::move(previous);
  });
  queue.decisions_pruned_to = std::move(mark);
  return absl::OkStatus();
}

absl::StatusOr<absl::Time> ApplyDecide(const DecideCommand& command,
                                       Group& group) {
  if (command.decision == ::referral::v1::DECISION_UNSPECIFIED ||
      !::referral::v1::Decision_IsValid(command.decision)) {
    return absl::InvalidArgumentError("decision: must be set");
  }
  ASSIGN_OR_RETURN(StoredReferral record, LoadById(group, command.referral_id));
  RETURN_IF_ERROR(CheckLease(record, command.lease_token));
  const absl::Time now = group.options().clock();
  QueueState* queue = group.Queue(record.queue(), /*create=*/true);
  RETURN_IF_ERROR(RemoveLease(group, *queue, record));
  record.clear_lease();
  record.set_state(::referral::v1::REFERRAL_STATE_DECIDED);
  ::referral::storage::v1::DecisionRecord* decision = record.mutable_decision();
  decision->set_decision(command.decision);
  decision->set_rationale(command.rationale);
  decision->set_feedback(command.feedback);
  decision->set_decided_by(command.actor);
  decision->set_decided_at_us(ToMicros(now));
  AddHistory(record, ::referral::v1::STAGE_DECIDED, now, command.actor,
             record.queue(), ::referral::v1::Decision_Name(command.decision),
             record.delivery_attempts());
  const std::string outcome = OutcomeKeyOf(record);
  RETURN_IF_ERROR(
      FromBatch(group.batch().Put(group.cf(kOutcomes), outcome, "")));
  group.Outcomes(record.agency_id()).Insert(outcome, "", &group.undo());
  // Time to decision for the queue's statistics, then a little pruning of
  // entries that have left the statistics window.
  RETURN_IF_ERROR(FromBatch(group.batch().Put(
      group.cf(kDecisions), DecisionStatKeyOf(record),
      keys::EncodeTime(decision->decided_at_us() - record.received_at_us()))));
  RETURN_IF_ERROR(PruneDecisionStats(group, *queue, record.queue(), now));
  RETURN_IF_ERROR(PutRecord(group, record));
  ReportChange(group, Kind::kDecided, record, record.queue(), now);
  return now;
}

absl::StatusOr<AcknowledgeResult> ApplyAcknowledge(
    const AcknowledgeCommand& command, Group& group) {
  ASSIGN_OR_RETURN(StoredReferral record, LoadById(group, command.referral_id));
  // Another agency's referral looks exactly like an unknown one.
  if (record.agency_id() != command.agency_id) {
    return absl::NotFoundError("referral not found");
  }
  if (record.state() == ::referral::v1::REFERRAL_STATE_OUTCOME_ACKNOWLEDGED) {
    return AcknowledgeResult{FromMicros(record.outcome_acknowledged_at_us()),
                             /*already_acknowledged=*/true};
  }
  if (record.state() != ::referral::v1::REFERRAL_STATE_DECIDED) {
    return absl::FailedPreconditionError(
        absl::StrCat("referral has no outcome to acknowledge (state ",
                     StateName(record.state()), ")"));
  }
  const absl::Time now = group.options().clock();
  const std::string outcome = OutcomeKeyOf(record);
  RETURN_IF_ERROR(
      FromBatch(group.batch().SingleDelete(group.cf(kOutcomes), outcome)));
  group.Outcomes(record.agency_id()).Erase(outcome, &group.undo());
  record.set_state(::referral::v1::REFERRAL_STATE_OUTCOME_ACKNOWLEDGED);
  record.set_outcome_acknowledged_at_us(ToMicros(now));
  AddHistory(record, ::referral::v1::STAGE_OUTCOME_ACKNOWLEDGED, now,
             command.actor, record.queue(), "");
  RETURN_IF_ERROR(PutRecord(group, record));
  return AcknowledgeResult{now, /*already_acknowledged=*/false};
}

absl::StatusOr<std::string> ApplyRequeue(const RequeueCommand& command,
                                         Group& group) {
  ASSIGN_OR_RETURN(StoredReferral record, LoadById(group, command.referral_id));
  if (record.state() != ::referral::v1::REFERRAL_STATE_DEAD_LETTERED) {
    return absl::FailedPreconditionError(
        absl::StrCat("referral is not dead-lettered (state ",
                     StateName(record.state()), ")"));
  }
  const absl::Time now = group.options().clock();
  QueueState* queue = group.Queue(record.queue(), /*create=*/true);
  const std::string dead = DeadLetterKeyOf(record);
  RETURN_IF_ERROR(
      FromBatch(group.batch().SingleDelete(group.cf(kDeadLetters), dead)));
  queue->dead_letters.Erase(dead, &group.undo());
  record.set_dead_lettered_at_us(0);
  record.set_failed_deliveries(0);
  record.set_state(::referral::v1::REFERRAL_STATE_QUEUED);
  record.set_enqueue_generation(record.enqueue_generation() + 1);
  record.set_queued_at_us(ToMicros(now));
  AddHistory(record, ::referral::v1::STAGE_REQUEUED, now, command.actor,
             record.queue(), "");
  RETURN_IF_ERROR(AddToQueue(group, *queue, record));
  RETURN_IF_ERROR(PutRecord(group, record));
  ReportChange(group, Kind::kRequeued, record, record.queue(), now);
  return record.queue();
}

}  // namespace

MutationPtr NewMutation(DecideCommand command, Done<absl::Time> done) {
  return OneReferralMutation(std::move(command), std::move(done), "decide",
                             ApplyDecide);
}

MutationPtr NewMutation(AcknowledgeCommand command,
                        Done<AcknowledgeResult> done) {
  return OneReferralMutation(std::move(command), std::move(done),
                             "acknowledge_outcome", ApplyAcknowledge);
}

MutationPtr NewMutation(RequeueCommand command, Done<std::string> done) {
  return OneReferralMutation(std::move(command), std::move(done), "requeue",
                             ApplyRequeue);
}

}  // namespace referral::storage
