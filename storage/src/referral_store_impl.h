// The RocksDB implementation of ReferralStore (hidden behind
// ReferralStore::Open). Its methods are spread over one file per seam:
// store_open.cc (open, recovery, close), group_commit.cc (the commit and
// reaper threads), write_health.cc (recovering from failed writes),
// store_reads.cc and store_counts.cc (readers), backups.cc (the backup
// thread); the mutations are in their own files (mutation.h).
//
// Threads:
//  - Callers enqueue mutations (queue_mu_) and return at once.
//  - One commit thread takes up to max_group_size mutations, applies them in
//    order to one WriteBatchWithIndex (each reading the ones before it), makes
//    one synced write, then publishes the group's in-memory effects and a
//    snapshot under state_mu_, reports the committed changes and hands each
//    mutation's `done` to the completion pool (completion_pool.h), so that
//    building and sending replies overlaps the next group. No mutex that
//    callers or readers need is held across the write.
//  - A reaper thread enqueues ExpireLeasesCommand every lease_check_interval
//    and, while writes are failing, tries to recover them (see WriteHealth).
//  - A backup thread copies the database for CreateBackup, so that a backup
//    never holds up commits.
//  - Readers run on caller threads against the last published snapshot and
//    the in-memory state published with it, so each read sees exactly the
//    state after some group commit.
#ifndef REFERRAL_STORAGE_SRC_REFERRAL_STORE_IMPL_H_
#define REFERRAL_STORAGE_SRC_REFERRAL_STORE_IMPL_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "completion_pool.h"
#include "group.h"
#include "mutation.h"
#include "rocksdb/db.h"
#include "rocksdb/listener.h"
#include "storage/referral_store.h"

namespace rocksdb {
class BackupEngine;
}  // namespace rocksdb

namespace referral::storage {

// Tells the store of RocksDB's background errors and keeps RocksDB from
// resuming by itself: the store alone resumes (TryRestoreWrites), and only
// when resuming is safe.
class BackgroundErrorListener final : public rocksdb::EventListener {
 public:
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason,
                         rocksdb::Status* error) override;
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason reason,
                            rocksdb::Status error,
                            bool* auto_recovery) override;
  // Whether a write to the write-ahead log has failed since the last
  // successful resume.
  bool log_write_failed() const { return log_write_failed_.load(); }
  void clear_log_write_failed() { log_write_failed_.store(false); }

 private:
  std::atomic<bool> log_write_failed_{false};
};

class ReferralStoreImpl final : public ReferralStore {
 public:
  static absl::StatusOr<std::unique_ptr<ReferralStoreImpl>> OpenImpl(
      StoreOptions options);
  ~ReferralStoreImpl() override;

  // Every ReferralStore comes from ReferralStore::Open, which only makes
  // this class.
  static ReferralStoreImpl& Of(ReferralStore& store) {
    return static_cast<ReferralStoreImpl&>(store);
  }

  absl::StatusOr<StoredReferral> GetReferral(
      std::string_view referral_id) override;
  absl::StatusOr<ReferralPage> List(Listing listing, std::string_view key,
                                    int page_size,
                                    std::string_view page_token) override;
  StoreCounts GetCounts(const CountsRequest& request) override;
  std::optional<int64_t> ReadyCount(std::string_view queue) override;
  absl::Status WriteHealth() override;
  void CreateBackup(std::string backup_dir, Done<BackupInfo> done) override;

  // For the audit trail and the diagnostics: the database and the snapshot
  // of the last group commit (or a new one).
  StoreCore& core() { return core_; }
  std::shared_ptr<const rocksdb::Snapshot> CurrentSnapshot();
  std::shared_ptr<const rocksdb::Snapshot> NewSnapshot();

 private:
  ReferralStoreImpl(StoreOptions options, std::unique_ptr<rocksdb::Env> env,
                    std::shared_ptr<rocksdb::Logger> info_log,
                    std::shared_ptr<BackgroundErrorListener> error_listener,
                    rocksdb::DB* db,
                    std::vector<rocksdb::ColumnFamilyHandle*> families);

  rocksdb::ColumnFamilyHandle* cf(Family family) const {
    return core_.cf(family);
  }

  // --- Open (store_open.cc). -----------------------------------------------
  absl::Status Recover();
  void StartThreads();

  // --- Group commit (group_commit.cc: commit and reaper threads). ----------
  void Enqueue(MutationPtr mutation) override;
  bool HasPendingOrClosing() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
    return !pending_.empty() || closing_;
  }
  // Only the commit thread writes committed_, so it may read it without the
  // lock (readers only ever share it).
  const CommittedState& CommittedForCommitThread() const
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return committed_;
  }
  void CommitLoop();
  void RunGroup(std::vector<MutationPtr>& mutations);
  // Hands each mutation, with its result, to the completion pool.
  void CompleteOnPool(std::vector<MutationPtr>& mutations,
                      std::vector<absl::Status>& results);
  // Moves every head whose first key was erased in this group past the
  // tombstones, reading through the batch.
  absl::Status AdvanceHeads(Group& group);
  // Installs the group's in-memory effects (and, if it wrote, a snapshot).
  void Publish(Group& group, bool wrote);
  void ReaperLoop();

  // --- Write health (write_health.cc: commit and reaper threads). ---------
  // Records a failed commit write; notifies if the store was healthy.
  void MarkWriteFailed(const absl::Status& status);
  // Whether any column family's active memtable holds an entry.
  bool ActiveMemtablesHoldData();
  // Writes, syncs and removes a 1 MB file in the data directory through the
  // store's Env: whether the disk takes new files again.
  rocksdb::Status ProbeFileWrite();
  // While unhealthy, and at most once a second: resumes RocksDB from its
  // background error and makes a small synced write; on success the store
  // is healthy again (and says so). Returns the health after the attempt
  // (or the current one when it is too early for another attempt).
  absl::Status TryRestoreWrites();
  // DB::Resume, given at most options_.resume_limit: RocksDB 7.8 can wait in
  // it forever for a flush that a failed background flush left unscheduled
  // (a memtable that filled up just as the disk did; facebook/rocksdb#15030).
  // Resume then runs on in resume_thread_ and the store needs reopening:
  // returns Aborted, and every later call too.
  rocksdb::Status ResumeWithin(absl::Duration limit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(recovery_mu_);

  // --- Backups (backups.cc: the backup thread). ----------------------------
  void BackupLoop();
  absl::StatusOr<BackupInfo> RunBackup(const std::string& backup_dir);

  // --- Reads (store_reads.cc, store_counts.cc). ----------------------------
  absl::StatusOr<StoredReferral> ReadBySeq(const rocksdb::Snapshot* snapshot,
                                           uint64_t seq);
  // The page of the keys `found` (one more than the page when another page
  // follows), in the listing's order.
  absl::StatusOr<ReferralPage> PageOf(
      std::vector<std::string> found, int page_size,
      const rocksdb::Snapshot* snapshot,
      absl::FunctionRef<std::optional<uint64_t>(std::string_view)> seq_of);
  // One page of an index range in key order: the stragglers of `head`, then
  // the keys from its low-water mark.
  absl::StatusOr<ReferralPage> ListRange(
      Family family, const std::string& prefix, const IndexHead* head,
      const std::shared_ptr<const rocksdb::Snapshot>& snapshot, int page_size,
      std::optional<std::string> after,
      absl::FunctionRef<std::optional<uint64_t>(std::string_view)> seq_of);
  // One page of a queue's notices, newest first.
  absl::StatusOr<ReferralPage> ListNotices(
      std::string_view queue, int page_size, std::optional<std::string> after,
      absl::FunctionRef<std::optional<uint64_t>(std::string_view)> seq_of);
  std::vector<QueueCounts> CountQueues(absl::Time now);
  std::vector<OutcomeBacklog> CountOutcomes(absl::Time now,
                                            absl::Duration acknowledge_within);
  DiskUsage MeasureDisk();
  // Keys in [from, to) at the snapshot.
  absl::StatusOr<int64_t> CountRange(Family family, const std::string& from,
                                     const std::string& to,
                                     const rocksdb::Snapshot* snapshot);
  // The first key of `family` at or after `from` and below `upper`, at the
  // snapshot.
  absl::StatusOr<std::optional<std::string>> FirstKeyFrom(
      Family family, const std::string& from, const std::string& upper,
      const rocksdb::Snapshot* snapshot, std::string* value = nullptr);
  // Fills the time-to-decision figures of `counts` from the decision-stats
  // entries of its queue decided in [now - window, now].
  absl::Status ReadDecisionStats(absl::Time now,
                                 const rocksdb::Snapshot* snapshot,
                                 QueueCounts& counts);

  const StoreOptions options_;
  // The Env every file goes through: encrypted when
  // options_.encryption_key_file is set, over options_.file_system when that
  // is; else null (RocksDB's default Env). Declared before the database so that
  // it is destroyed after it: the DB writes through the Env until it is
  // deleted.
  std::unique_ptr<rocksdb::Env> env_;
  // RocksDB's info log (info_log.h), writing through env_.
  std::shared_ptr<rocksdb::Logger> info_log_;
  std::shared_ptr<BackgroundErrorListener> error_listener_;
  std::unique_ptr<rocksdb::DB> db_;
  StoreCore core_;
  const rocksdb::WriteOptions sync_write_;

  absl::Mutex queue_mu_;
  std::deque<MutationPtr> pending_ ABSL_GUARDED_BY(queue_mu_);
  bool closing_ ABSL_GUARDED_BY(queue_mu_) = false;

  // Written only by the commit thread (and Open), after each group commit;
  // read by readers and, while building a group, by the commit thread.
  absl::Mutex state_mu_;
  CommittedState committed_ ABSL_GUARDED_BY(state_mu_);

  absl::Mutex reaper_mu_;
  bool reaper_stop_ ABSL_GUARDED_BY(reaper_mu_) = false;

  // Write health. recovery_mu_ orders health changes and recovery attempts
  // (and the calls of on_write_health_changed); health_mu_ guards only the
  // value, so WriteHealth never waits for a recovery attempt.
  absl::Mutex recovery_mu_ ABSL_ACQUIRED_BEFORE(health_mu_);
  absl::Time last_recovery_attempt_ ABSL_GUARDED_BY(recovery_mu_) =
      absl::InfinitePast();
  // The running or last DB::Resume (ResumeWithin). A Resume that never
  // returns is released when the store closes (CancelAllBackgroundWork).
  struct ResumeAttempt {
    absl::Notification finished;
    rocksdb::Status status;  // written before `finished` is notified
  };
  std::shared_ptr<ResumeAttempt> resume_attempt_ ABSL_GUARDED_BY(recovery_mu_);
  std::thread resume_thread_ ABSL_GUARDED_BY(recovery_mu_);
  mutable absl::Mutex health_mu_;
  absl::Status write_health_ ABSL_GUARDED_BY(health_mu_);
  // write_health_.ok(), readable without a lock on the commit path.
  std::atomic<bool> writes_healthy_{true};

  // Backups: at most one requested or running at a time.
  struct BackupRequest {
    std::string backup_dir;
    Done<BackupInfo> done;
  };
  absl::Mutex backup_mu_;
  std::optional<BackupRequest> backup_request_ ABSL_GUARDED_BY(backup_mu_);
  bool backup_busy_ ABSL_GUARDED_BY(backup_mu_) = false;
  bool backup_stop_ ABSL_GUARDED_BY(backup_mu_) = false;
  // The engine of the running backup, so that closing the store can stop it.
  rocksdb::BackupEngine* backup_engine_ ABSL_GUARDED_BY(backup_mu_) = nullptr;

  // Runs the `done` of committed (or refused) mutations; emptied and joined
  // after the commit thread, before the database closes.
  std::unique_ptr<CompletionPool> completion_pool_;
  std::thread commit_thread_;
  std::thread reaper_thread_;
  std::thread backup_thread_;
};

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_SRC_REFERRAL_STORE_IMPL_H_
