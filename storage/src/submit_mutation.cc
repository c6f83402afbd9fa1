// SubmitCommand: a new referral stored, linked to earlier referrals about
// the same children, and enqueued (records.h), with a notice for each queue
// routing only tells. Applied on the commit thread; if it fails part-way the
// commit thread rolls the batch and the in-memory state back (group_commit.cc).
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "key_codec.h"
#include "mutation.h"
#include "record_util.h"
#include "records.h"

namespace referral::storage {
namespace {

using ::referral::storage::v1::StoredLink;

// A child with many referrals (a looked-after teenager can have hundreds in a
// year) must not make the next referral about them cost more, nor the claim
// that shows triage the history. So per child key the broker reads at most
// kMaxLinksCountedPerChildKey index entries, newest first; it counts what it
// read and keeps the newest kLinksKeptPerChild in the record.
constexpr int kMaxLinksCountedPerChildKey = 100;
constexpr int kLinksKeptPerChild = 20;

bool IsBand(::referral::v1::PriorityBand band) {
  switch (band) {
    case ::referral::v1::PRIORITY_BAND_IMMEDIATE_RISK:
    case ::referral::v1::PRIORITY_BAND_RAISED:
    case ::referral::v1::PRIORITY_BAND_STANDARD:
      return true;
    default:
      return false;
  }
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
  if (!IsBand(command.placement.band)) {
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

// Links `record` to the earlier referrals about its children received within
// the rule's lookback (reading through the group, so earlier submissions of
// the same group count), and counts them per child.
absl::StatusOr<EarlierReferralCounts> FindEarlierReferrals(
    Group& group, const SubmitCommand& command, StoredReferral& record) {
  const int64_t received = record.received_at_us();
  const int64_t from = SaturatingAdd(
      received, -absl::ToInt64Microseconds(command.concern_rule.lookback));
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
    std::unique_ptr<rocksdb::Iterator> it = group.NewIterator(kChildren, &end);
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
  EarlierReferralCounts counts;
  for (auto& [child, earlier] : by_child) {
    if (earlier.by_id.empty()) continue;
    const int count = static_cast<int>(earlier.by_id.size());
    counts.most_for_one_child = std::max(counts.most_for_one_child, count);
    counts.capped = counts.capped || earlier.capped;
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
  return counts;
}

// Stores what the caller's rule makes of the counts.
absl::Status ApplyConcernRule(const ConcernRule& rule,
                              const EarlierReferralCounts& counts,
                              absl::Time now, StoredReferral& record) {
  if (!rule.assess) return absl::OkStatus();
  const ConcernAssessment assessed = rule.assess(counts, record.band());
  if (!IsBand(assessed.band)) {
    return absl::InvalidArgumentError("concern_rule: returned no band");
  }
  record.set_repeated_concern(assessed.repeated_concern);
  if (assessed.band != record.band()) {
    record.set_band(assessed.band);
    AddHistory(record, ::referral::v1::STAGE_PRIORITY_RAISED, now, kBrokerActor,
               record.queue(), assessed.raised_detail);
  }
  return absl::OkStatus();
}

// Writes the known-queue marker of a queue seen for the first time.
absl::Status PersistQueue(Group& group, const std::string& name,
                          QueueState* state) {
  if (state->persisted) return absl::OkStatus();
  RETURN_IF_ERROR(FromBatch(
      group.batch().Put(group.cf(kMeta), keys::KnownQueueMetaKey(name), "")));
  state->persisted = true;
  group.undo().Record([state] { state->persisted = false; });
  return absl::OkStatus();
}

// `fingerprint` is Fingerprint(command.referral), computed by the caller's
// thread before the submission was queued. Moves the referral out of
// `command` into the stored record.
absl::StatusOr<SubmitResult> ApplySubmit(
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
                     group.Get(kIdempotency, idempotency_key));
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

  const absl::Time now = group.options().clock();
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
  ASSIGN_OR_RETURN(EarlierReferralCounts counts,
                   FindEarlierReferrals(group, command, record));
  RETURN_IF_ERROR(ApplyConcernRule(command.concern_rule, counts, now, record));

  // Writes: the record, idempotency, child links, the queue's marker and its
  // ready and arrival entries, and a notice (and marker) for each notified
  // queue.
  QueueState* queue = group.Queue(placement.queue, /*create=*/true);
  RETURN_IF_ERROR(PutRecord(group, record));
  if (!command.idempotency_key.empty()) {
    RETURN_IF_ERROR(FromBatch(group.batch().Put(
        group.cf(kIdempotency), idempotency_key, keys::EncodeUint64(seq))));
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
        group.cf(kChildren),
        keys::EncodeChildLinkKey({child.key, record.received_at_us(), seq}),
        self.SerializeAsString())));
  }
  RETURN_IF_ERROR(PersistQueue(group, placement.queue, queue));
  RETURN_IF_ERROR(AddToQueue(group, *queue, record));
  ReportChange(group, CommittedChange::Kind::kArrived, record, placement.queue,
               now);
  // A notice per notified queue, so that a queue that is only told (the
  // emergency duty team out of hours) can list what it was told about, and
  // a watcher of that queue learns it holds no work item for it. The
  // notified queue becomes a known queue for the counts.
  std::set<std::string> noticed;
  for (const std::string& notified : placement.notified_queues) {
    if (notified == placement.queue || !noticed.insert(notified).second) {
      continue;
    }
    RETURN_IF_ERROR(
        PersistQueue(group, notified, group.Queue(notified, /*create=*/true)));
    RETURN_IF_ERROR(FromBatch(group.batch().Put(
        group.cf(kNotices),
        keys::EncodeNoticeKey({notified, record.received_at_us(), seq}), "")));
    ReportChange(group, CommittedChange::Kind::kArrived, record, notified, now)
        .notice_only = true;
  }
  group.next_seq() = seq + 1;
  group.undo().Record([&group, seq] { group.next_seq() = seq; });
  return SubmitResult{std::move(record), /*duplicate=*/false};
}

}  // namespace

MutationPtr NewMutation(SubmitCommand command, Done<SubmitResult> done) {
  AuditContext who = AuditedAs(command);
  // Hashing the referral is work for the caller's thread, not the commit
  // thread that every change waits for.
  absl::StatusOr<std::string> fingerprint = Fingerprint(command.referral);
  return MakeMutation<SubmitResult>(
      [command = std::move(command),
       fingerprint = std::move(fingerprint)](Group& group) mutable {
        return ApplySubmit(command, fingerprint, group);
      },
      std::move(done),
      [who = std::move(who)](const absl::StatusOr<SubmitResult>& r) {
        // A refused submission has no referral id yet.
        return std::vector<AuditEntry>{
            {who.principal, who.on_behalf_of, "submit",
             r.ok() ? r->record.referral_id() : "", ResultName(r.status())}};
      });
}

}  // namespace referral::storage
