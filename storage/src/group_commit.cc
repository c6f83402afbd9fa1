// The commit thread: takes queued mutations in groups, applies each to one
// write batch (rolling back one that fails, keeping its audit record), makes
// one synced write, then publishes the group's in-memory effects and hands
// each mutation's `done` to the completion pool. And the reaper thread,
// which commits lease expiry and, while writes fail, tries to recover them.
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "key_codec.h"
#include "record_util.h"
#include "referral_store_impl.h"

namespace referral::storage {
namespace {

// The first key in [from, upper) of an iterator, or nullopt.
absl::StatusOr<std::optional<std::string>> FirstKey(rocksdb::Iterator& it,
                                                    const std::string& from,
                                                    const std::string* upper) {
  it.Seek(from);
  if (it.Valid() && (upper == nullptr || it.key().compare(*upper) < 0)) {
    return std::optional<std::string>(it.key().ToString());
  }
  if (!it.status().ok()) return FromRocksStatus(it.status(), "index read");
  return std::optional<std::string>();
}

// Brings the committed entries up to date with a group's working copies, in
// place (the copies are overlays on them).
template <typename T>
void AbsorbAll(std::map<std::string, T, std::less<>>& committed,
               std::map<std::string, T, std::less<>>& touched) {
  for (auto& [name, copy] : touched) {
    auto it = committed.find(name);
    if (it == committed.end()) {
      committed.emplace(name, std::move(copy));
    } else {
      it->second.Absorb(std::move(copy));
    }
  }
}

}  // namespace

void MutationDeleter::operator()(Mutation* mutation) const { delete mutation; }

void ReferralStoreImpl::Enqueue(MutationPtr mutation) {
  mutation->enqueued_at = absl::Now();
  {
    absl::MutexLock lock(&queue_mu_);
    if (!closing_) {
      pending_.push_back(std::move(mutation));
      return;
    }
  }
  mutation->Complete(absl::UnavailableError("the referral store is closing"));
}

void ReferralStoreImpl::CommitLoop() {
  for (;;) {
    std::vector<MutationPtr> mutations;
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(
          absl::Condition(this, &ReferralStoreImpl::HasPendingOrClosing));
      if (pending_.empty()) return;  // closing, and everything is done
      const size_t n = std::min(pending_.size(),
                                static_cast<size_t>(options_.max_group_size));
      mutations.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        mutations.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    RunGroup(mutations);
  }
}

void ReferralStoreImpl::RunGroup(std::vector<MutationPtr>& mutations) {
  // Real time, not options_.clock: these time work, they are not records.
  const absl::Time started = absl::Now();
  Group group(CommittedForCommitThread(), core_);
  std::vector<absl::Status> results(mutations.size());
  absl::Status group_status;
  for (size_t i = 0; i < mutations.size(); ++i) {
    const UndoLog::Mark undo_mark = group.undo().mark();
    const size_t changes_mark = group.changes().size();
    group.batch().SetSavePoint();
    results[i] = mutations[i]->Apply(group);
    if (results[i].ok()) {
      group.batch().PopSavePoint();
    } else {
      // The mutation failed: leave nothing of it in the batch or in memory.
      rocksdb::Status rollback = group.batch().RollbackToSavePoint();
      group.undo().RollbackTo(undo_mark);
      group.changes().resize(changes_mark);
      if (!rollback.ok()) {
        group_status = FromRocksStatus(rollback, "commit");
        break;
      }
    }
    // Its audit records go into the same batch (after any rollback, so a
    // refused mutation is still on the record), and commit or fail with it.
    group_status = AppendAudit(group, mutations[i]->AuditEntries(results[i]));
    if (!group_status.ok()) break;
  }
  if (group_status.ok() &&
      group.next_seq() != CommittedForCommitThread().next_seq) {
    // The seq high-water, once per group rather than once per submission.
    group_status =
        FromRocksStatus(group.batch().Put(cf(kMeta), keys::NextSeqMetaKey(),
                                          keys::EncodeUint64(group.next_seq())),
                        "batch");
  }
  if (group_status.ok()) group_status = AdvanceHeads(group);
  const bool wrote = group.batch().GetWriteBatch()->Count() > 0;
  if (group_status.ok() && wrote && !writes_healthy_.load()) {
    // After a failed write, RocksDB may refuse every write until it is
    // resumed; show that writing works again before committing the group.
    group_status = TryRestoreWrites();
  }
  const absl::Time applied = absl::Now();
  if (group_status.ok() && wrote) {
    rocksdb::Status s = db_->Write(sync_write_, group.batch().GetWriteBatch());
    if (!s.ok()) {
      group_status = FromRocksStatus(s, "commit");
      MarkWriteFailed(group_status);
    }
  }
  if (!group_status.ok()) {
    // Nothing was stored and nothing in memory changed; every mutation in
    // the group gets an error (their results may rest on each other).
    for (absl::Status& result : results) {
      if (result.ok()) result = group_status;
    }
    CompleteOnPool(mutations, results);
    return;
  }
  const absl::Time synced = absl::Now();
  Publish(group, wrote);
  if (options_.on_committed && !group.changes().empty()) {
    options_.on_committed(group.changes());
  }
  const GroupCommitTiming timing{
      .mutations = static_cast<int>(mutations.size()),
      .waited = started - mutations.front()->enqueued_at,
      .applied = applied - started,
      .synced = synced - applied};
  CompleteOnPool(mutations, results);
  if (wrote && options_.on_group_committed) {
    options_.on_group_committed(timing);
  }
}

void ReferralStoreImpl::CompleteOnPool(std::vector<MutationPtr>& mutations,
                                       std::vector<absl::Status>& results) {
  std::vector<absl::AnyInvocable<void() &&>> completions;
  completions.reserve(mutations.size());
  for (size_t i = 0; i < mutations.size(); ++i) {
    completions.push_back([mutation = std::move(mutations[i]),
                           status = std::move(results[i])]() mutable {
      mutation->Complete(std::move(status));
    });
  }
  completion_pool_->Run(std::move(completions));
}

absl::Status ReferralStoreImpl::AdvanceHeads(Group& group) {
  auto advance = [&](IndexHead& head, Family family,
                     const std::string* upper) -> absl::Status {
    if (!head.needs_advance()) return absl::OkStatus();
    std::optional<std::string> first;
    if (head.live_from_low_water() > 0) {
      std::unique_ptr<rocksdb::Iterator> it = group.NewIterator(family, upper);
      ASSIGN_OR_RETURN(first, FirstKey(*it, head.low_water(), upper));
    }
    head.Advance(first, &group.undo());
    return absl::OkStatus();
  };
  for (auto& [name, queue] : group.touched_queues()) {
    const std::string end = keys::NamePrefixEnd(name);
    RETURN_IF_ERROR(advance(queue.ready, kReady, &end));
    RETURN_IF_ERROR(advance(queue.arrival, kArrival, &end));
    RETURN_IF_ERROR(advance(queue.dead_letters, kDeadLetters, &end));
  }
  for (auto& [agency, head] : group.touched_outcomes()) {
    const std::string end = keys::NamePrefixEnd(agency);
    RETURN_IF_ERROR(advance(head, kOutcomes, &end));
  }
  if (group.touched_leases().has_value()) {
    RETURN_IF_ERROR(advance(*group.touched_leases(), kLeases, nullptr));
  }
  return absl::OkStatus();
}

void ReferralStoreImpl::Publish(Group& group, bool wrote) {
  // The snapshot is taken before anything else can write (this thread is the
  // only writer), so it matches the in-memory state published with it. A
  // group that wrote nothing (empty claims, idle reaper passes: every other
  // mutation, even a refused one, writes at least its audit record) keeps
  // the current one.
  std::shared_ptr<const rocksdb::Snapshot> snapshot;
  if (wrote) snapshot = NewSnapshot();
  group.undo().Clear();
  absl::WriterMutexLock lock(&state_mu_);
  AbsorbAll(committed_.queues, group.touched_queues());
  AbsorbAll(committed_.outcomes, group.touched_outcomes());
  if (group.touched_leases().has_value()) {
    committed_.leases.Absorb(std::move(*group.touched_leases()));
  }
  committed_.next_seq = group.next_seq();
  committed_.audit_head = group.audit_head();
  if (snapshot != nullptr) committed_.snapshot = std::move(snapshot);
}

void ReferralStoreImpl::ReaperLoop() {
  for (;;) {
    // The first pass runs at once: leases that expired while the store was
    // closed go back to their queues straight after Open.
    absl::Notification finished;
    Commit(ExpireLeasesCommand{}, [&finished](absl::StatusOr<int> expired) {
      if (!expired.ok()) {
        LogWarning(absl::StrCat("lease expiry: ", expired.status().ToString()));
      }
      finished.Notify();
    });
    finished.WaitForNotification();
    // An idle store must notice that it can write again too.
    if (!writes_healthy_.load()) TryRestoreWrites().IgnoreError();
    absl::MutexLock lock(&reaper_mu_);
    if (reaper_mu_.AwaitWithTimeout(absl::Condition(&reaper_stop_),
                                    options_.lease_check_interval)) {
      return;
    }
  }
}

}  // namespace referral::storage
