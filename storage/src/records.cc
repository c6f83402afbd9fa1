#include "records.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "key_codec.h"
#include "record_util.h"

namespace referral::storage {

absl::Status FromBatch(const rocksdb::Status& s) {
  return s.ok() ? absl::OkStatus() : FromRocksStatus(s, "batch");
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  if (b > 0 && a > std::numeric_limits<int64_t>::max() - b) {
    return std::numeric_limits<int64_t>::max();
  }
  if (b < 0 && a < std::numeric_limits<int64_t>::min() - b) {
    return std::numeric_limits<int64_t>::min();
  }
  return a + b;
}

std::string StateName(::referral::v1::ReferralState state) {
  return ::referral::v1::ReferralState_Name(state);
}

std::string ReadyKeyOf(const StoredReferral& r) {
  return keys::EncodeReadyKey({r.queue(), static_cast<uint8_t>(r.band()),
                               r.due_at_us(), r.seq(), r.enqueue_generation()});
}
namespace {
std::string ArrivalKeyOf(const StoredReferral& r) {
  return keys::EncodeArrivalKey({r.queue(), r.seq(), r.enqueue_generation()});
}
}  // namespace
std::string LeaseKeyOf(const StoredReferral& r) {
  return keys::EncodeLeaseKey(
      {r.lease().expires_at_us(), r.seq(), r.enqueue_generation()});
}
std::string DeadLetterKeyOf(const StoredReferral& r) {
  return keys::EncodeDeadLetterKey(
      {r.queue(), r.dead_lettered_at_us(), r.seq(), r.enqueue_generation()});
}
std::string OutcomeKeyOf(const StoredReferral& r) {
  return keys::EncodeOutcomeKey(
      {r.agency_id(), r.decision().decided_at_us(), r.seq()});
}
std::string DecisionStatKeyOf(const StoredReferral& r) {
  return keys::EncodeDecisionStatKey(
      {r.queue(), r.decision().decided_at_us(), r.seq()});
}

absl::StatusOr<StoredReferral> LoadBySeq(Group& group, uint64_t seq) {
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   group.Get(kReferrals, keys::ReferralKey(seq)));
  if (!value) return absl::NotFoundError("referral not found");
  StoredReferral record;
  if (!record.ParseFromString(*value)) {
    return absl::DataLossError(
        absl::StrCat("stored referral ", seq, " is unreadable"));
  }
  return record;
}

absl::StatusOr<StoredReferral> LoadById(Group& group,
                                        std::string_view referral_id) {
  std::optional<keys::ParsedReferralId> parsed =
      keys::ParseReferralId(referral_id);
  if (!parsed) {
    return absl::InvalidArgumentError("referral_id: not a referral reference");
  }
  ASSIGN_OR_RETURN(StoredReferral record, LoadBySeq(group, parsed->seq));
  // "REF-2025-000042" must not find REF-2026-000042.
  if (record.referral_id() != referral_id) {
    return absl::NotFoundError("referral not found");
  }
  return record;
}

absl::Status PutRecord(Group& group, const StoredReferral& record) {
  return FromBatch(group.batch().Put(group.cf(kReferrals),
                                     keys::ReferralKey(record.seq()),
                                     record.SerializeAsString()));
}

absl::Status CheckLease(const StoredReferral& record, std::string_view token) {
  if (record.state() != ::referral::v1::REFERRAL_STATE_CLAIMED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "referral is not claimed (state ", StateName(record.state()), ")"));
  }
  if (!LeaseTokensEqual(record.lease().token(), token)) {
    return absl::FailedPreconditionError("lease token is stale or wrong");
  }
  return absl::OkStatus();
}

absl::Status AddToQueue(Group& group, QueueState& queue,
                        const StoredReferral& record) {
  const std::string ready = ReadyKeyOf(record);
  const std::string arrival = ArrivalKeyOf(record);
  const std::string received = keys::EncodeTime(record.received_at_us());
  RETURN_IF_ERROR(FromBatch(group.batch().Put(group.cf(kReady), ready, "")));
  RETURN_IF_ERROR(
      FromBatch(group.batch().Put(group.cf(kArrival), arrival, received)));
  queue.ready.Insert(ready, "", &group.undo());
  queue.arrival.Insert(arrival, received, &group.undo());
  return absl::OkStatus();
}

absl::Status RemoveFromQueue(Group& group, QueueState& queue,
                             const StoredReferral& record) {
  const std::string ready = ReadyKeyOf(record);
  const std::string arrival = ArrivalKeyOf(record);
  RETURN_IF_ERROR(
      FromBatch(group.batch().SingleDelete(group.cf(kReady), ready)));
  RETURN_IF_ERROR(
      FromBatch(group.batch().SingleDelete(group.cf(kArrival), arrival)));
  queue.ready.Erase(ready, &group.undo());
  queue.arrival.Erase(arrival, &group.undo());
  return absl::OkStatus();
}

absl::Status AddLease(Group& group, QueueState& queue,
                      const StoredReferral& record) {
  const std::string key = LeaseKeyOf(record);
  RETURN_IF_ERROR(
      FromBatch(group.batch().Put(group.cf(kLeases), key, record.queue())));
  group.Leases().Insert(key, record.queue(), &group.undo());
  if (queue.claimed_due.emplace(record.seq(), record.due_at_us()).second) {
    group.undo().Record(
        [&queue, seq = record.seq()] { queue.claimed_due.erase(seq); });
  }
  return absl::OkStatus();
}

absl::Status RemoveLease(Group& group, QueueState& queue,
                         const StoredReferral& record) {
  const std::string key = LeaseKeyOf(record);
  RETURN_IF_ERROR(
      FromBatch(group.batch().SingleDelete(group.cf(kLeases), key)));
  group.Leases().Erase(key, &group.undo());
  auto claimed = queue.claimed_due.find(record.seq());
  if (claimed != queue.claimed_due.end()) {
    group.undo().Record(
        [&queue, entry = *claimed] { queue.claimed_due.insert(entry); });
    queue.claimed_due.erase(claimed);
  }
  return absl::OkStatus();
}

absl::Status ReturnOrDeadLetter(Group& group, QueueState& queue,
                                StoredReferral& record, absl::Time now,
                                CommittedChange::Kind kind) {
  record.clear_lease();
  // The release or expiry happened either way; watchers and the metrics see
  // it, then the dead-lettering if that follows, as the history records both.
  ReportChange(group, kind, record, record.queue(), now);
  if (record.failed_deliveries() >= group.options().max_deliveries) {
    record.set_state(::referral::v1::REFERRAL_STATE_DEAD_LETTERED);
    record.set_dead_lettered_at_us(ToMicros(now));
    AddHistory(record, ::referral::v1::STAGE_DEAD_LETTERED, now, kBrokerActor,
               record.queue(),
               absl::StrCat("failed deliveries: ", record.failed_deliveries()),
               record.delivery_attempts());
    const std::string key = DeadLetterKeyOf(record);
    RETURN_IF_ERROR(
        FromBatch(group.batch().Put(group.cf(kDeadLetters), key, "")));
    queue.dead_letters.Insert(key, "", &group.undo());
    ReportChange(group, CommittedChange::Kind::kDeadLettered, record,
                 record.queue(), now);
    return absl::OkStatus();
  }
  // Back to its place: same band, due time and seq; new generation so that
  // no index key is ever written twice.
  record.set_state(::referral::v1::REFERRAL_STATE_QUEUED);
  record.set_enqueue_generation(record.enqueue_generation() + 1);
  record.set_queued_at_us(ToMicros(now));
  return AddToQueue(group, queue, record);
}

CommittedChange& ReportChange(Group& group, CommittedChange::Kind kind,
                              const StoredReferral& record,
                              std::string_view queue, absl::Time at,
                              std::string_view worker) {
  CommittedChange& change = group.changes().emplace_back();
  change.kind = kind;
  change.queue = std::string(queue);
  change.referral_id = record.referral_id();
  change.at = at;
  change.band = record.band();
  change.due_at = FromMicros(record.due_at_us());
  change.agency_type = record.referral().referrer().agency_type();
  change.worker = std::string(worker);
  if (kind == CommittedChange::Kind::kDecided) {
    change.decision = record.decision().decision();
  }
  if (kind == CommittedChange::Kind::kClaimed) {
    // Claim has already counted this delivery.
    change.delivery_attempt = record.delivery_attempts();
  }
  return change;
}

}  // namespace referral::storage
