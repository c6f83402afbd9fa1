// The store's mutations, applied on the commit thread to the group's write
// batch. Each one validates first and then writes; if it fails part-way the
// commit thread rolls the batch and the in-memory state back to where they
// were before it (see RunGroup), so a failed mutation leaves nothing behind.
//
// Index entries are derived from the record (queue, band, due time, seq,
// enqueue generation, lease expiry...), are Put once and SingleDeleted once.
// A referral that re-enters a queue gets a new enqueue generation, hence new
// keys, but keeps its band, due time and seq: its place in the queue.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "key_codec.h"
#include "record_util.h"
#include "referral_store_impl.h"
#include "rocksdb/perf_context.h"
#include "rocksdb/perf_level.h"

namespace referral::storage {
namespace {

using ::referral::storage::v1::StoredLink;
using ::referral::storage::v1::StoredReferral;
using ::referral::v1::QueueEvent;
using ::referral::v1::ReferralState;

constexpr std::string_view kBrokerActor = "broker";
// Claims and link look-ups are bounded so one mutation stays small.
constexpr int kMaxClaim = 1000;
// A child with many referrals (a looked-after teenager can have hundreds in a
// year) must not make the next referral about them cost more, nor the claim
// that shows triage the history. So per child key the broker reads at most
// kMaxLinksCountedPerChildKey index entries, newest first; it counts what it
// read and keeps the newest kLinksKeptPerChild in the record.
constexpr int kMaxLinksCountedPerChildKey = 100;
constexpr int kLinksKeptPerChild = 20;
// Decision-stat entries older than the window deleted per decision: more
// than the one each decision adds, so the index catches up after a pause or
// a shorter window, while each decision's batch stays small.
constexpr size_t kMaxPrunedPerDecision = 8;

bool AnyCountCapped(const StoredReferral& record) {
  return absl::c_any_of(record.earlier_referral_counts(),
                        [](const auto& count) { return count.count_capped(); });
}

absl::Status FromBatch(const rocksdb::Status& s) {
  return s.ok() ? absl::OkStatus() : FromRocksStatus(s, "batch");
}

std::string StateName(ReferralState state) {
  return ::referral::v1::ReferralState_Name(state);
}

// The lease check shared by Extend, Release and Decide.
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

int64_t SaturatingAdd(int64_t a, int64_t b) {
  if (b > 0 && a > std::numeric_limits<int64_t>::max() - b) {
    return std::numeric_limits<int64_t>::max();
  }
  if (b < 0 && a < std::numeric_limits<int64_t>::min() - b) {
    return std::numeric_limits<int64_t>::min();
  }
  return a + b;
}

std::string ReadyKeyOf(const StoredReferral& r) {
  return keys::EncodeReadyKey({r.queue(), static_cast<uint8_t>(r.band()),
                               r.due_at_us(), r.seq(), r.enqueue_generation()});
}
std::string ArrivalKeyOf(const StoredReferral& r) {
  return keys::EncodeArrivalKey({r.queue(), r.seq(), r.enqueue_generation()});
}
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

absl::Status ValidateSubmit(const SubmitCommand& command) {
  if (!keys::IsValidName(command.agency_id)) {
    return absl::InvalidArgumentError("agency_id: not an agency id");
  }
  if (!keys::IsValidName(command.placement.queue)) {
    return absl::InvalidArgumentError("placement.queue: not a queue name");
  }
  for (const std::string& queue : command.placement.notified_queues) {
    if (!keys::IsValidName(queue)) {
      return absl::InvalidArgumentError(
          "placement.notified_queues: not a queue name");
    }
  }
  switch (command.placement.band) {
    case ::referral::v1::PRIORITY_BAND_IMMEDIATE_RISK:
    case ::referral::v1::PRIORITY_BAND_RAISED:
    case ::referral::v1::PRIORITY_BAND_STANDARD:
      break;
    default:
      return absl::InvalidArgumentError("placement.band: must be set");
  }
  if (command.received_at == absl::InfiniteFuture() ||
      command.received_at == absl::InfinitePast()) {
    return absl::InvalidArgumentError("received_at: must be a real time");
  }
  for (const ChildMatchKey& key : command.child_keys) {
    if (key.key.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError("child_keys: key contains a 0 byte");
    }
  }
  return absl::OkStatus();
}

}  // namespace

// --- Records and indexes. --------------------------------------------------

absl::StatusOr<StoredReferral> ReferralStoreImpl::LoadBySeq(Group& group,
                                                            uint64_t seq) {
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   group.Get(cf(kReferrals), keys::ReferralKey(seq)));
  if (!value) return absl::NotFoundError("referral not found");
  StoredReferral record;
  if (!record.ParseFromString(*value)) {
    return absl::DataLossError(
        absl::StrCat("stored referral ", seq, " is unreadable"));
  }
  return record;
}

absl::StatusOr<StoredReferral> ReferralStoreImpl::LoadById(
    Group& group, std::string_view referral_id) {
  std::optional<keys::ParsedReferralId> parsed =
      keys::ParseReferralId(referral_id);
  if (!parsed) {
    return absl::InvalidArgumentError("referral_id: not a referral reference");
  }
  ASSIGN_OR_RETURN(StoredReferral record, LoadBySeq(group, parsed->seq));
  if (record.referral_id() != referral_id) {
    return absl::NotFoundError("referral not found");
  }
  return record;
}

absl::Status ReferralStoreImpl::PutRecord(Group& group,
                                          const StoredReferral& record) {
  return FromBatch(group.batch().Put(cf(kReferrals),
                                     keys::ReferralKey(record.seq()),
                                     record.SerializeAsString()));
}

absl::Status ReferralStoreImpl::AddToQueue(Group& group, QueueState& queue,
                                           const StoredReferral& record) {
  const std::string ready = ReadyKeyOf(record);
  const std::string arrival = ArrivalKeyOf(record);
  const std::string received = keys::EncodeTime(record.received_at_us());
  RETURN_IF_ERROR(FromBatch(group.batch().Put(cf(kReady), ready, "")));
  RETURN_IF_ERROR(
      FromBatch(group.batch().Put(cf(kArrival), arrival, received)));
  queue.ready.Insert(ready, "", &group.undo());
  queue.arrival.Insert(arrival, received, &group.undo());
  return absl::OkStatus();
}

absl::Status ReferralStoreImpl::RemoveFromQueue(Group& group, QueueState& queue,
                                                const StoredReferral& record) {
  const std::string ready = ReadyKeyOf(record);
  const std::string arrival = ArrivalKeyOf(record);
  RETURN_IF_ERROR(FromBatch(group.batch().SingleDelete(cf(kReady), ready)));
  RETURN_IF_ERROR(FromBatch(group.batch().SingleDelete(cf(kArrival), arrival)));
  queue.ready.Erase(ready, &group.undo());
  queue.arrival.Erase(arrival, &group.undo());
  return absl::OkStatus();
}

absl::Status ReferralStoreImpl::AddLease(Group& group, QueueState& queue,
                                         const StoredReferral& record) {
  const std::string key = LeaseKeyOf(record);
  RETURN_IF_ERROR(
      FromBatch(group.batch().Put(cf(kLeases), key, record.queue())));
  group.Leases().Insert(key, record.queue(), &group.undo());
  if (queue.claimed_due.emplace(record.seq(), record.due_at_us()).second) {
    group.undo().Record(
        [&queue, seq = record.seq()] { queue.claimed_due.erase(seq); });
  }
  return absl::OkStatus();
}

absl::Status ReferralStoreImpl::RemoveLease(Group& group, QueueState& queue,
                                            const StoredReferral& record) {
  const std::string key = LeaseKeyOf(record);
  RETURN_IF_ERROR(FromBatch(group.batch().SingleDelete(cf(kLeases), key)));
  group.Leases().Erase(key, &group.undo());
  auto claimed = queue.claimed_due.find(record.seq());
  if (claimed != queue.claimed_due.end()) {
    group.undo().Record(
        [&queue, entry = *claimed] { queue.claimed_due.insert(entry); });
    queue.claimed_due.erase(claimed);
  }
  return absl::OkStatus();
}

absl::Status ReferralStoreImpl::ReturnOrDeadLetter(Group& group,
                                                   QueueState& queue,
                                                   StoredReferral& record,
                                                   absl::Time now,
                                                   QueueEvent::Kind kind) {
  record.clear_lease();
  // The release or expiry happened either way; watchers and the metrics see
  // it, then the dead-lettering if that follows, as the history records both.
  group.events().push_back(MakeEvent(kind, record, record.queue(), now));
  if (record.failed_deliveries() >= options_.max_deliveries) {
    record.set_state(::referral::v1::REFERRAL_STATE_DEAD_LETTERED);
    record.set_dead_lettered_at_us(ToMicros(now));
    AddHistory(record, ::referral::v1::STAGE_DEAD_LETTERED, now, kBrokerActor,
               record.queue(),
               absl::StrCat("failed deliveries: ", record.failed_deliveries()),
               record.delivery_attempts());
    const std::string key = DeadLetterKeyOf(record);
    RETURN_IF_ERROR(FromBatch(group.batch().Put(cf(kDeadLetters), key, "")));
    queue.dead_letters.Insert(key, "", &group.undo());
    group.events().push_back(
        MakeEvent(QueueEvent::KIND_DEAD_LETTERED, record, record.queue(), now));
    return absl::OkStatus();
  }
  // Back to its place: same band, due time and seq; new generation so that
  // no index key is ever written twice.
  record.set_state(::referral::v1::REFERRAL_STATE_QUEUED);
  record.set_enqueue_generation(record.enqueue_generation() + 1);
  record.set_queued_at_us(ToMicros(now));
  RETURN_IF_ERROR(AddToQueue(group, queue, record));
  return absl::OkStatus();
}

// --- Submit. ---------------------------------------------------------------

absl::Status ReferralStoreImpl::FindEarlierReferrals(
    Group& group, const SubmitCommand& command, StoredReferral& record,
    int* most_for_one_child) {
  const int64_t received = record.received_at_us();
  const int64_t from = SaturatingAdd(
      received, -absl::ToInt64Microseconds(command.repeated_concern.window));
  // Earlier referrals received up to and including this one's time.
  const int64_t until = SaturatingAdd(received, 1);
  struct EarlierReferrals {
    // By referral id: a child indexed by NHS number and by name is one
    // earlier referral, not two.
    std::map<std::string, StoredLink> by_id;
    bool capped = false;
  };
  std::map<int, EarlierReferrals> by_child;
  for (const ChildMatchKey& child : command.child_keys) {
    if (child.key.empty()) continue;
    const std::string begin = keys::ChildLinkKeyBound(child.key, from);
    const std::string end = keys::ChildLinkKeyBound(child.key, until);
    std::unique_ptr<rocksdb::Iterator> it =
        group.NewIterator(cf(kChildren), &end);
    EarlierReferrals& earlier = by_child[child.child_index];
    int read = 0;
    // Newest first, so that what is kept when there are many is the recent
    // history triage needs.
    for (it->SeekForPrev(end); it->Valid() && it->key().compare(begin) >= 0;
         it->Prev()) {
      if (it->key().compare(end) >= 0) continue;  // the batch's own bound
      if (read == kMaxLinksCountedPerChildKey) {
        earlier.capped = true;
        break;
      }
      ++read;
      StoredLink link;
      if (!link.ParseFromArray(it->value().data(),
                               static_cast<int>(it->value().size()))) {
        return absl::DataLossError("children index: unreadable entry");
      }
      if (!child.nhs_number.empty() && !link.nhs_number().empty() &&
          link.nhs_number() != child.nhs_number) {
        continue;  // same name and birth date, different child
      }
      if (earlier.by_id.contains(link.referral_id())) continue;
      link.clear_nhs_number();
      link.set_child_index(child.child_index);
      link.set_matched_by(child.matched_by);
      std::string id = link.referral_id();
      earlier.by_id.emplace(std::move(id), std::move(link));
    }
    if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  }
  *most_for_one_child = 0;
  for (auto& [child, earlier] : by_child) {
    if (earlier.by_id.empty()) continue;
    const int count = static_cast<int>(earlier.by_id.size());
    *most_for_one_child = std::max(*most_for_one_child, count);
    ::referral::v1::EarlierReferralCount* counted =
        record.add_earlier_referral_counts();
    counted->set_child_index(child);
    counted->set_count(count);
    counted->set_count_capped(earlier.capped);
    // The newest kLinksKeptPerChild, listed oldest first.
    std::vector<StoredLink*> links;
    links.reserve(earlier.by_id.size());
    for (auto& [id, link] : earlier.by_id) links.push_back(&link);
    auto newer = [](const StoredLink* a, const StoredLink* b) {
      return a->received_at_us() != b->received_at_us()
                 ? a->received_at_us() > b->received_at_us()
                 : a->referral_id() > b->referral_id();
    };
    if (links.size() > kLinksKeptPerChild) {
      std::partial_sort(links.begin(), links.begin() + kLinksKeptPerChild,
                        links.end(), newer);
      links.resize(kLinksKeptPerChild);
    } else {
      std::sort(links.begin(), links.end(), newer);
    }
    for (auto link = links.rbegin(); link != links.rend(); ++link) {
      *record.add_links() = std::move(**link);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SubmitResult> ReferralStoreImpl::ApplySubmit(
    SubmitCommand& command,
    const absl::StatusOr<std::string>& computed_fingerprint, Group& group) {
  RETURN_IF_ERROR(ValidateSubmit(command));
  RETURN_IF_ERROR(computed_fingerprint.status());
  const std::string& fingerprint = *computed_fingerprint;

  // Idempotency: the same (agency, key) with the same referral returns the
  // original and writes nothing.
  const std::string idempotency_key =
      keys::EncodeIdempotencyKey({command.agency_id, command.idempotency_key});
  if (!command.idempotency_key.empty()) {
    ASSIGN_OR_RETURN(std::optional<std::string> existing,
                     group.Get(cf(kIdempotency), idempotency_key));
    if (existing) {
      std::optional<uint64_t> seq = keys::ReadUint64(*existing);
      if (!seq) return absl::DataLossError("idempotency entry is unreadable");
      ASSIGN_OR_RETURN(StoredReferral original, LoadBySeq(group, *seq));
      if (original.fingerprint() != fingerprint) {
        return absl::AlreadyExistsError(
            "idempotency_key: already used for a different referral");
      }
      return SubmitResult{std::move(original), /*duplicate=*/true};
    }
  }

  const absl::Time now = options_.clock();
  const uint64_t seq = group.next_seq();
  const Placement& placement = command.placement;
  StoredReferral record;
  record.set_seq(seq);
  record.set_referral_id(keys::FormatReferralId(
      absl::ToCivilSecond(command.received_at, absl::UTCTimeZone()).year(),
      seq));
  record.set_agency_id(command.agency_id);
  record.set_idempotency_key(command.idempotency_key);
  record.set_fingerprint(fingerprint);
  // Moved, not copied: the command is applied once and the referral is the
  // bulk of it.
  *record.mutable_referral() = std::move(command.referral);
  record.set_received_at_us(ToMicros(command.received_at));
  record.set_state(::referral::v1::REFERRAL_STATE_QUEUED);
  record.set_queue(placement.queue);
  record.set_band(placement.band);
  record.set_due_at_us(ToMicros(placement.due_at));
  for (const std::string& queue : placement.notified_queues) {
    record.add_notified_queues(queue);
  }
  record.set_routing_rule(placement.routing_rule);
  record.set_queued_at_us(ToMicros(now));
  AddHistory(record, ::referral::v1::STAGE_RECEIVED, command.received_at,
             command.actor, "", "");
  AddHistory(record, ::referral::v1::STAGE_ROUTED, now, kBrokerActor,
             placement.queue, placement.routing_rule);

  // Repeated concerns: earlier referrals about the same child.
  int most_for_one_child = 0;
  RETURN_IF_ERROR(
      FindEarlierReferrals(group, command, record, &most_for_one_child));
  const RepeatedConcernPolicy& policy = command.repeated_concern;
  if (policy.threshold > 0 && most_for_one_child >= policy.threshold) {
    record.set_repeated_concern(true);
    if (record.band() == ::referral::v1::PRIORITY_BAND_STANDARD) {
      record.set_band(::referral::v1::PRIORITY_BAND_RAISED);
      // Counts only: never anything about the child.
      AddHistory(record, ::referral::v1::STAGE_PRIORITY_RAISED, now,
                 kBrokerActor, placement.queue,
                 absl::StrFormat("repeated concern: %d%s earlier referrals "
                                 "in %d days",
                                 most_for_one_child,
                                 AnyCountCapped(record) ? " or more" : "",
                                 absl::ToInt64Hours(policy.window) / 24));
    }
  }

  // Writes: the record, idempotency, child links, the
  // queue's marker and its ready and arrival entries, and a notice (and
  // marker) for each notified queue.
  QueueState* queue = group.Queue(placement.queue, /*create=*/true);
  RETURN_IF_ERROR(PutRecord(group, record));
  if (!command.idempotency_key.empty()) {
    RETURN_IF_ERROR(FromBatch(group.batch().Put(
        cf(kIdempotency), idempotency_key, keys::EncodeUint64(seq))));
  }
  StoredLink self;
  self.set_referral_id(record.referral_id());
  self.set_received_at_us(record.received_at_us());
  self.set_agency_type(record.referral().referrer().agency_type());
  std::set<std::string> indexed;
  for (const ChildMatchKey& child : command.child_keys) {
    if (child.key.empty() || !indexed.insert(child.key).second) continue;
    self.set_nhs_number(child.nhs_number);
    RETURN_IF_ERROR(FromBatch(group.batch().Put(
        cf(kChildren),
        keys::EncodeChildLinkKey({child.key, record.received_at_us(), seq}),
        self.SerializeAsString())));
  }
  auto persist_queue = [&](const std::string& name,
                           QueueState* state) -> absl::Status {
    if (state->persisted) return absl::OkStatus();
    RETURN_IF_ERROR(FromBatch(
        group.batch().Put(cf(kMeta), keys::KnownQueueMetaKey(name), "")));
    state->persisted = true;
    group.undo().Record([state] { state->persisted = false; });
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(persist_queue(placement.queue, queue));
  RETURN_IF_ERROR(AddToQueue(group, *queue, record));
  // A notice per notified queue, so that a queue that is only told (the
  // emergency duty team out of hours) can list what it was told about. The
  // notified queue becomes a known queue for the counts.
  std::set<std::string> noticed;
  for (const std::string& notified : placement.notified_queues) {
    if (notified == placement.queue || !noticed.insert(notified).second) {
      continue;
    }
    RETURN_IF_ERROR(
        persist_queue(notified, group.Queue(notified, /*create=*/true)));
    RETURN_IF_ERROR(FromBatch(group.batch().Put(
        cf(kNotices),
        keys::EncodeNoticeKey({notified, record.received_at_us(), seq}), "")));
  }
  group.next_seq() = seq + 1;
  group.undo().Record([&group, seq] { group.next_seq() = seq; });

  group.events().push_back(
      MakeEvent(QueueEvent::KIND_ARRIVED, record, placement.queue, now));
  // One notice event per notified queue (as for the notices above), so a
  // watcher of that queue can tell it holds no work item for it.
  std::set<std::string> announced;
  for (const std::string& notified : placement.notified_queues) {
    if (notified == placement.queue || !announced.insert(notified).second) {
      continue;
    }
    QueueEvent notice =
        MakeEvent(QueueEvent::KIND_ARRIVED, record, notified, now);
    notice.set_notice_only(true);
    group.events().push_back(std::move(notice));
  }
  return SubmitResult{std::move(record), /*duplicate=*/false};
}

// --- Claim. ----------------------------------------------------------------

absl::StatusOr<std::vector<StoredReferral>> ReferralStoreImpl::ApplyClaim(
    const ClaimCommand& command, Group& group) {
  if (!keys::IsValidName(command.queue)) {
    return absl::InvalidArgumentError("queue: not a queue name");
  }
  if (command.max < 1) {
    return absl::InvalidArgumentError("max: must be at least 1");
  }
  if (command.lease <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("lease: must be positive");
  }
  std::vector<StoredReferral> claimed;
  // A claim served from memory, or from an empty queue, steps over nothing.
  last_claim_keys_skipped_.store(0);
  last_claim_tombstones_skipped_.store(0);
  QueueState* queue = group.Queue(command.queue, /*create=*/false);
  if (queue == nullptr || queue->ready.live() == 0) return claimed;
  const size_t max = static_cast<size_t>(std::min(command.max, kMaxClaim));

  // The head: stragglers (known in memory) first, as they sort before the
  // low-water mark; then one seek to the mark. Keys are collected before the
  // batch is changed, as the batch iterator must not see its own updates.
  std::vector<std::string> taken;
  queue->ready.VisitStragglers(nullptr,
                               [&](const std::string& key, const std::string&) {
                                 if (taken.size() == max) return false;
                                 taken.push_back(key);
                                 return true;
                               });
  bool sought = false;
  std::optional<std::string> next_live;
  if (taken.size() < max && queue->ready.live_from_low_water() > 0) {
    sought = true;
    const std::string end = keys::NamePrefixEnd(command.queue);
    std::unique_ptr<rocksdb::Iterator> it = group.NewIterator(cf(kReady), &end);
    // Count what RocksDB steps over to serve this claim (diagnostics; see
    // referral_store_internal.h).
    const rocksdb::PerfLevel previous = rocksdb::GetPerfLevel();
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
    rocksdb::get_perf_context()->Reset();
    it->Seek(queue->ready.low_water());
    for (; it->Valid() && it->key().compare(end) < 0 && taken.size() < max;
         it->Next()) {
      taken.push_back(it->key().ToString());
    }
    if (it->Valid() && it->key().compare(end) < 0) {
      next_live = it->key().ToString();
    }
    last_claim_keys_skipped_.store(
        rocksdb::get_perf_context()->internal_key_skipped_count);
    last_claim_tombstones_skipped_.store(
        rocksdb::get_perf_context()->internal_delete_skipped_count);
    rocksdb::SetPerfLevel(previous);
    if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  }

  const absl::Time now = options_.clock();
  for (const std::string& key : taken) {
    std::optional<keys::ReadyKey> ready = keys::DecodeReadyKey(key);
    if (!ready) return absl::DataLossError("ready index: unreadable key");
    ASSIGN_OR_RETURN(StoredReferral record, LoadBySeq(group, ready->seq));
    if (record.state() != ::referral::v1::REFERRAL_STATE_QUEUED ||
        ReadyKeyOf(record) != key) {
      return absl::DataLossError(
          absl::StrCat("ready index out of step with referral ", ready->seq));
    }
    RETURN_IF_ERROR(RemoveFromQueue(group, *queue, record));
    ASSIGN_OR_RETURN(std::string token, NewLeaseToken());
    record.set_state(::referral::v1::REFERRAL_STATE_CLAIMED);
    ::referral::storage::v1::Lease* lease = record.mutable_lease();
    lease->set_token(token);
    lease->set_worker(command.worker);
    lease->set_claimed_at_us(ToMicros(now));
    lease->set_expires_at_us(ToMicros(now + command.lease));
    record.set_delivery_attempts(record.delivery_attempts() + 1);
    if (record.first_claimed_at_us() == 0) {
      record.set_first_claimed_at_us(ToMicros(now));
    }
    AddHistory(record, ::referral::v1::STAGE_CLAIMED, now, command.actor,
               record.queue(), "", record.delivery_attempts());
    RETURN_IF_ERROR(PutRecord(group, record));
    RETURN_IF_ERROR(AddLease(group, *queue, record));
    group.events().push_back(MakeEvent(QueueEvent::KIND_CLAIMED, record,
                                       record.queue(), now, command.worker));
    claimed.push_back(std::move(record));
  }
  // Everything from the mark up to the next live entry is now claimed: move
  // the mark there so no later seek steps over these tombstones.
  if (sought) queue->ready.Advance(next_live, &group.undo());
  return claimed;
}

// --- Extend, release, decide. ----------------------------------------------

absl::StatusOr<absl::Time> ReferralStoreImpl::ApplyExtend(
    const ExtendCommand& command, Group& group) {
  if (command.lease <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("lease: must be positive");
  }
  ASSIGN_OR_RETURN(StoredReferral record, LoadById(group, command.referral_id));
  RETURN_IF_ERROR(CheckLease(record, command.lease_token));
  const absl::Time now = options_.clock();
  const absl::Time expires = now + command.lease;
  QueueState* queue = group.Queue(record.queue(), /*create=*/true);
  if (ToMicros(expires) != record.lease().expires_at_us()) {
    RETURN_IF_ERROR(RemoveLease(group, *queue, record));
    record.mutable_lease()->set_expires_at_us(ToMicros(expires));
    RETURN_IF_ERROR(AddLease(group, *queue, record));
  }
  AddHistory(record, ::referral::v1::STAGE_CLAIM_EXTENDED, now, command.actor,
             record.queue(), "", record.delivery_attempts());
  RETURN_IF_ERROR(PutRecord(group, record));
  group.events().push_back(MakeEvent(QueueEvent::KIND_EXTENDED, record,
                                     record.queue(), now,
                                     record.lease().worker()));
  return expires;
}

absl::StatusOr<ReferralState> ReferralStoreImpl::ApplyRelease(
    const ReleaseCommand& command, Group& group) {
  ASSIGN_OR_RETURN(StoredReferral record, LoadById(group, command.referral_id));
  RETURN_IF_ERROR(CheckLease(record, command.lease_token));
  const absl::Time now = options_.clock();
  QueueState* queue = group.Queue(record.queue(), /*create=*/true);
  RETURN_IF_ERROR(RemoveLease(group, *queue, record));
  record.set_failed_deliveries(record.failed_deliveries() + 1);
  AddHistory(record, ::referral::v1::STAGE_RELEASED, now, command.actor,
             record.queue(), command.reason, record.delivery_attempts());
  RETURN_IF_ERROR(ReturnOrDeadLetter(group, *queue, record, now,
                                     QueueEvent::KIND_RELEASED));
  RETURN_IF_ERROR(PutRecord(group, record));
  return record.state();
}

absl::StatusOr<absl::Time> ReferralStoreImpl::ApplyDecide(
    const DecideCommand& command, Group& group) {
  if (command.decision == ::referral::v1::DECISION_UNSPECIFIED ||
      !::referral::v1::Decision_IsValid(command.decision)) {
    return absl::InvalidArgumentError("decision: must be set");
  }
  ASSIGN_OR_RETURN(StoredReferral record, LoadById(group, command.referral_id));
  RETURN_IF_ERROR(CheckLease(record, command.lease_token));
  const absl::Time now = options_.clock();
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
  RETURN_IF_ERROR(FromBatch(group.batch().Put(cf(kOutcomes), outcome, "")));
  group.Outcomes(record.agency_id()).Insert(outcome, "", &group.undo());
  // Time to decision for the queue's statistics, then a little pruning of
  // entries that have left the statistics window.
  RETURN_IF_ERROR(FromBatch(group.batch().Put(
      cf(kDecisions), DecisionStatKeyOf(record),
      keys::EncodeTime(decision->decided_at_us() - record.received_at_us()))));
  RETURN_IF_ERROR(PruneDecisionStats(group, *queue, record.queue(), now));
  RETURN_IF_ERROR(PutRecord(group, record));
  group.events().push_back(
      MakeEvent(QueueEvent::KIND_DECIDED, record, record.queue(), now));
  return now;
}

absl::Status ReferralStoreImpl::PruneDecisionStats(Group& group,
                                                   QueueState& queue,
                                                   const std::string& name,
                                                   absl::Time now) {
  // Entries decided before the cutoff are outside every later window (the
  // clock moves forward), so nothing reads them again.
  const std::string bound = keys::DecisionStatKeyBound(
      name, ToMicros(now - options_.decision_stats_window));
  const std::string from = queue.decisions_pruned_to.empty()
                               ? keys::NamePrefix(name)
                               : queue.decisions_pruned_to;
  if (from >= bound) return absl::OkStatus();
  // Collected before the batch changes: its iterator must not see its own
  // deletions while it moves.
  std::vector<std::string> old;
  {
    std::unique_ptr<rocksdb::Iterator> it =
        group.NewIterator(cf(kDecisions), &bound);
    for (it->Seek(from); it->Valid() && it->key().compare(bound) < 0 &&
                         old.size() < kMaxPrunedPerDecision;
         it->Next()) {
      old.push_back(it->key().ToString());
    }
    if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  }
  for (const std::string& key : old) {
    RETURN_IF_ERROR(FromBatch(group.batch().SingleDelete(cf(kDecisions), key)));
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

// --- Outcomes and dead letters. --------------------------------------------

absl::StatusOr<AcknowledgeResult> ReferralStoreImpl::ApplyAcknowledge(
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
  const absl::Time now = options_.clock();
  const std::string outcome = OutcomeKeyOf(record);
  RETURN_IF_ERROR(
      FromBatch(group.batch().SingleDelete(cf(kOutcomes), outcome)));
  group.Outcomes(record.agency_id()).Erase(outcome, &group.undo());
  record.set_state(::referral::v1::REFERRAL_STATE_OUTCOME_ACKNOWLEDGED);
  record.set_outcome_acknowledged_at_us(ToMicros(now));
  AddHistory(record, ::referral::v1::STAGE_OUTCOME_ACKNOWLEDGED, now,
             command.actor, record.queue(), "");
  RETURN_IF_ERROR(PutRecord(group, record));
  return AcknowledgeResult{now, /*already_acknowledged=*/false};
}

absl::StatusOr<std::string> ReferralStoreImpl::ApplyRequeue(
    const RequeueCommand& command, Group& group) {
  ASSIGN_OR_RETURN(StoredReferral record, LoadById(group, command.referral_id));
  if (record.state() != ::referral::v1::REFERRAL_STATE_DEAD_LETTERED) {
    return absl::FailedPreconditionError(
        absl::StrCat("referral is not dead-lettered (state ",
                     StateName(record.state()), ")"));
  }
  const absl::Time now = options_.clock();
  QueueState* queue = group.Queue(record.queue(), /*create=*/true);
  const std::string dead = DeadLetterKeyOf(record);
  RETURN_IF_ERROR(
      FromBatch(group.batch().SingleDelete(cf(kDeadLetters), dead)));
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
  group.events().push_back(
      MakeEvent(QueueEvent::KIND_REQUEUED, record, record.queue(), now));
  return record.queue();
}

// --- Lease expiry. ---------------------------------------------------------

absl::StatusOr<int> ReferralStoreImpl::ApplyExpireLeases(
    Group& group, std::vector<std::string>* expired_ids) {
  const absl::Time now = options_.clock();
  // Lease keys expiring at or before now sort below this bound.
  const std::string bound =
      keys::LeaseKeyBound(SaturatingAdd(ToMicros(now), 1));
  IndexHead& leases = group.Leases();
  if (leases.live() == 0) return 0;

  std::vector<std::string> expired;
  leases.VisitStragglers(nullptr,
                         [&](const std::string& key, const std::string&) {
                           if (key >= bound) return false;
                           expired.push_back(key);
                           return true;
                         });
  if (leases.live_from_low_water() > 0 && leases.low_water() < bound) {
    std::unique_ptr<rocksdb::Iterator> it =
        group.NewIterator(cf(kLeases), &bound);
    for (it->Seek(leases.low_water());
         it->Valid() && it->key().compare(bound) < 0; it->Next()) {
      expired.push_back(it->key().ToString());
    }
    if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  }

  for (const std::string& key : expired) {
    std::optional<keys::LeaseKey> lease = keys::DecodeLeaseKey(key);
    if (!lease) return absl::DataLossError("lease index: unreadable key");
    ASSIGN_OR_RETURN(StoredReferral record, LoadBySeq(group, lease->seq));
    if (record.state() != ::referral::v1::REFERRAL_STATE_CLAIMED ||
        LeaseKeyOf(record) != key) {
      return absl::DataLossError(
          absl::StrCat("lease index out of step with referral ", lease->seq));
    }
    QueueState* queue = group.Queue(record.queue(), /*create=*/true);
    RETURN_IF_ERROR(RemoveLease(group, *queue, record));
    record.set_failed_deliveries(record.failed_deliveries() + 1);
    AddHistory(record, ::referral::v1::STAGE_LEASE_EXPIRED, now, kBrokerActor,
               record.queue(), "", record.delivery_attempts());
    RETURN_IF_ERROR(ReturnOrDeadLetter(group, *queue, record, now,
                                       QueueEvent::KIND_LEASE_EXPIRED));
    RETURN_IF_ERROR(PutRecord(group, record));
    expired_ids->push_back(record.referral_id());
  }
  // Nothing live below the bound remains: later passes start there.
  leases.RaiseTo(bound, &group.undo());
  return static_cast<int>(expired.size());
}

}  // namespace referral::storage
