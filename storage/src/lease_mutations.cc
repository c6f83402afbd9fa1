// Claims and leases: ClaimCommand, ExtendCommand, ReleaseCommand and
// ExpireLeasesCommand, applied on the commit thread (see records.h for the
// index entries they move).
#include <algorithm>
#include <memory>
#include <optional>
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
#include "rocksdb/perf_context.h"
#include "rocksdb/perf_level.h"

namespace referral::storage {
namespace {

using ::referral::v1::ReferralState;
using Kind = CommittedChange::Kind;

// Claims are bounded so one mutation stays small.
constexpr int kMaxClaim = 1000;

// The record an index entry points at, which must be in `state` and give
// that very key back: DATA_LOSS otherwise (the index is out of step).
template <typename Decode, typename KeyOf>
absl::StatusOr<StoredReferral> LoadIndexed(
    Group& group, const std::string& key, const char* index, Decode decode,
    KeyOf key_of, ::referral::v1::ReferralState state) {
  auto decoded = decode(key);
  if (!decoded) {
    return absl::DataLossError(absl::StrCat(index, " index: unreadable key"));
  }
  ASSIGN_OR_RETURN(StoredReferral record, LoadBySeq(group, decoded->seq));
  if (record.state() != state || key_of(record) != key) {
    return absl::DataLossError(
        absl::StrCat(index, " index out of step with referral ", decoded->seq));
  }
  return record;
}

absl::StatusOr<std::vector<StoredReferral>> ApplyClaim(
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
  StoreCore& core = group.core();
  // A claim served from memory, or from an empty queue, steps over nothing.
  core.last_claim_keys_skipped.store(0);
  core.last_claim_tombstones_skipped.store(0);
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
    std::unique_ptr<rocksdb::Iterator> it = group.NewIterator(kReady, &end);
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
    core.last_claim_keys_skipped.store(
        rocksdb::get_perf_context()->internal_key_skipped_count);
    core.last_claim_tombstones_skipped.store(
        rocksdb::get_perf_context()->internal_delete_skipped_count);
    rocksdb::SetPerfLevel(previous);
    if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  }

  const absl::Time now = group.options().clock();
  for (const std::string& key : taken) {
    ASSIGN_OR_RETURN(
        StoredReferral record,
        LoadIndexed(group, key, "ready", keys::DecodeReadyKey, ReadyKeyOf,
                    ::referral::v1::REFERRAL_STATE_QUEUED));
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
    ReportChange(group, Kind::kClaimed, record, record.queue(), now,
                 command.worker);
    claimed.push_back(std::move(record));
  }
  // Everything from the mark up to the next live entry is now claimed: move
  // the mark there so no later seek steps over these tombstones.
  if (sought) queue->ready.Advance(next_live, &group.undo());
  return claimed;
}

absl::StatusOr<absl::Time> ApplyExtend(const ExtendCommand& command,
                                       Group& group) {
  if (command.lease <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("lease: must be positive");
  }
  ASSIGN_OR_RETURN(StoredReferral record, LoadById(group, command.referral_id));
  RETURN_IF_ERROR(CheckLease(record, command.lease_token));
  const absl::Time now = group.options().clock();
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
  ReportChange(group, Kind::kExtended, record, record.queue(), now,
               record.lease().worker());
  return expires;
}

// One failed delivery of a claimed referral (a release or an expired lease):
// its lease removed, the history entry added, then back to its queue or to
// the dead letters.
absl::Status FailDelivery(Group& group, StoredReferral& record,
                          ::referral::v1::Stage stage, std::string_view actor,
                          std::string_view detail, Kind kind, absl::Time now) {
  QueueState* queue = group.Queue(record.queue(), /*create=*/true);
  RETURN_IF_ERROR(RemoveLease(group, *queue, record));
  record.set_failed_deliveries(record.failed_deliveries() + 1);
  AddHistory(record, stage, now, actor, record.queue(), detail,
             record.delivery_attempts());
  RETURN_IF_ERROR(ReturnOrDeadLetter(group, *queue, record, now, kind));
  return PutRecord(group, record);
}

absl::StatusOr<ReferralState> ApplyRelease(const ReleaseCommand& command,
                                           Group& group) {
  ASSIGN_OR_RETURN(StoredReferral record, LoadById(group, command.referral_id));
  RETURN_IF_ERROR(CheckLease(record, command.lease_token));
  RETURN_IF_ERROR(FailDelivery(group, record, ::referral::v1::STAGE_RELEASED,
                               command.actor, command.reason, Kind::kReleased,
                               group.options().clock()));
  return record.state();
}

// Appends the id of each referral whose lease expired to `expired_ids`.
absl::StatusOr<int> ApplyExpireLeases(Group& group,
                                      std::vector<std::string>* expired_ids) {
  const absl::Time now = group.options().clock();
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
    std::unique_ptr<rocksdb::Iterator> it = group.NewIterator(kLeases, &bound);
    for (it->Seek(leases.low_water());
         it->Valid() && it->key().compare(bound) < 0; it->Next()) {
      expired.push_back(it->key().ToString());
    }
    if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  }

  for (const std::string& key : expired) {
    ASSIGN_OR_RETURN(
        StoredReferral record,
        LoadIndexed(group, key, "lease", keys::DecodeLeaseKey, LeaseKeyOf,
                    ::referral::v1::REFERRAL_STATE_CLAIMED));
    RETURN_IF_ERROR(FailDelivery(group, record,
                                 ::referral::v1::STAGE_LEASE_EXPIRED,
                                 kBrokerActor, "", Kind::kLeaseExpired, now));
    expired_ids->push_back(record.referral_id());
  }
  // Nothing live below the bound remains: later passes start there.
  leases.RaiseTo(bound, &group.undo());
  return static_cast<int>(expired.size());
}

}  // namespace

MutationPtr NewMutation(ClaimCommand command,
                        Done<std::vector<StoredReferral>> done) {
  AuditContext who = AuditedAs(command);
  return MakeMutation<std::vector<StoredReferral>>(
      [command = std::move(command)](Group& group) {
        return ApplyClaim(command, group);
      },
      std::move(done),
      [who = std::move(who)](
          const absl::StatusOr<std::vector<StoredReferral>>& r) {
        // An empty claim touched no personal data and appends nothing, so
        // idle polling does not fill the trail.
        std::vector<std::string> ids;
        if (r.ok()) {
          for (const StoredReferral& record : *r) {
            ids.push_back(record.referral_id());
          }
        }
        return AuditEach(who, "claim", r.status(), ids);
      });
}

MutationPtr NewMutation(ExtendCommand command, Done<absl::Time> done) {
  return OneReferralMutation(std::move(command), std::move(done), "extend",
                             ApplyExtend);
}

MutationPtr NewMutation(ReleaseCommand command,
                        Done<::referral::v1::ReferralState> done) {
  return OneReferralMutation(std::move(command), std::move(done), "release",
                             ApplyRelease);
}

MutationPtr NewMutation(ExpireLeasesCommand, Done<int> done) {
  // Filled by the apply function, read by the audit function right after.
  auto expired = std::make_shared<std::vector<std::string>>();
  return MakeMutation<int>(
      [expired](Group& group) {
        return ApplyExpireLeases(group, expired.get());
      },
      std::move(done),
      [expired](const absl::StatusOr<int>& r) {
        return AuditEach({std::string(kBrokerActor), ""}, "lease_expired",
                         r.status(), *expired);
      });
}

}  // namespace referral::storage
