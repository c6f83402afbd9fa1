// The RocksDB implementation of ReferralStore (hidden behind
// ReferralStore::Open).
//
// Threads:
//  - Callers enqueue mutations (queue_mu_) and return at once.
//  - One commit thread takes up to max_group_size mutations, applies them in
//    order to one WriteBatchWithIndex (each reading the ones before it), makes
//    one synced write, then publishes the group's in-memory effects and a
//    snapshot under state_mu_, reports the queue events and hands each
//    mutation's `done` to the completion pool (completion_pool.h), so that
//    building and sending replies overlaps the next group. No mutex that
//    callers or readers need is held across the write.
//  - A reaper thread enqueues ExpireLeases every lease_check_interval and,
//    while writes are failing, tries to recover them (see WriteHealth).
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
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "audit_chain.h"
#include "completion_pool.h"
#include "index_head.h"
#include "referral_store_internal.h"
#include "rocksdb/db.h"
#include "rocksdb/listener.h"
#include "rocksdb/utilities/write_batch_with_index.h"
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

// The in-memory view of one queue, rebuilt at Open from its index keys.
struct QueueState {
  // A group commit's working copy of a committed queue: its index heads are
  // overlays (IndexHead::OverlayOn), so that making it costs nothing like
  // the queue's stragglers.
  static QueueState OverlayOn(const QueueState& committed);
  // Brings the committed queue up to date with a working copy made from it.
  void Absorb(QueueState&& overlay);

  IndexHead ready;         // ready index: delivery order
  IndexHead arrival;       // arrival index: oldest ready first
  IndexHead dead_letters;  // dead-letter index: in dead-lettering order
  // Due times (µs) of the queue's claimed referrals by seq, for the overdue
  // counts (claimed referrals are few: bounded by workers in flight).
  std::map<uint64_t, int64_t> claimed_due;
  bool persisted = false;  // its known-queue meta key is stored
  // The decision-stats index of this queue holds nothing live below this key
  // (everything below was pruned). Empty: not known since Open, so the next
  // prune seeks from the start of the queue's range once.
  std::string decisions_pruned_to;
};

// What the readers see: the state after the last group commit.
struct CommittedState {
  std::map<std::string, QueueState, std::less<>> queues;
  // Outcomes awaiting acknowledgement, by agency.
  std::map<std::string, IndexHead, std::less<>> outcomes;
  IndexHead leases;
  uint64_t next_seq = 1;
  // The audit chain's head after the last group commit.
  audit::ChainHead audit_head;
  // The database as of the last group commit (released when replaced and
  // no reader holds it any longer).
  std::shared_ptr<const rocksdb::Snapshot> snapshot;
};

// The working state of one group commit: the write batch plus copies of the
// in-memory state it touches. Owned by the commit thread.
class Group {
 public:
  Group(const CommittedState& committed, rocksdb::DB* db);

  rocksdb::WriteBatchWithIndex& batch() { return batch_; }
  UndoLog& undo() { return undo_; }
  std::vector<::referral::v1::QueueEvent>& events() { return events_; }

  // The group's copy of a queue (copied from the committed state on first
  // use). With create = false, nullptr for a queue never seen.
  QueueState* Queue(const std::string& name, bool create);
  IndexHead& Outcomes(const std::string& agency_id);
  IndexHead& Leases();
  uint64_t& next_seq() { return next_seq_; }
  // The audit chain as amended by this group (published with it).
  audit::ChainHead& audit_head() { return audit_head_; }

  // Reads through the batch: nullopt when absent.
  absl::StatusOr<std::optional<std::string>> Get(
      rocksdb::ColumnFamilyHandle* cf, const std::string& key);
  // An iterator over the database as amended by the batch, from `lower` up
  // to `upper` (exclusive; may be empty for "no bound"). The caller still
  // checks the upper bound: the batch's delta does not honour it.
  std::unique_ptr<rocksdb::Iterator> NewIterator(
      rocksdb::ColumnFamilyHandle* cf, const std::string* upper);

  std::map<std::string, QueueState, std::less<>>& touched_queues() {
    return queues_;
  }
  std::map<std::string, IndexHead, std::less<>>& touched_outcomes() {
    return outcomes_;
  }
  std::optional<IndexHead>& touched_leases() { return leases_; }

 private:
  const CommittedState& committed_;  // read only by the commit thread
  rocksdb::DB* db_;
  rocksdb::WriteBatchWithIndex batch_;
  UndoLog undo_;
  std::vector<::referral::v1::QueueEvent> events_;
  std::map<std::string, QueueState, std::less<>> queues_;
  std::map<std::string, IndexHead, std::less<>> outcomes_;
  std::optional<IndexHead> leases_;
  uint64_t next_seq_;
  audit::ChainHead audit_head_;
};

// One audit record to append, before it gets its place in the chain.
struct AuditEntry {
  std::string principal;
  std::string on_behalf_of;
  std::string action;
  std::string referral_id;
  std::string result;  // "OK" or the status code name
  // The record's time; the commit thread's clock when unset.
  std::optional<absl::Time> at;
};

// One queued mutation.
class Op {
 public:
  virtual ~Op() = default;
  // Adds the mutation to the group. On error the caller rolls the batch and
  // the group's state back to where they were before.
  virtual absl::Status Apply(Group& group) = 0;
  // The audit records of the mutation, given what Apply returned; called
  // once, right after Apply (and after a failed one is rolled back).
  virtual std::vector<AuditEntry> AuditEntries(const absl::Status& status) = 0;
  // Reports the outcome; called exactly once.
  virtual void Complete(absl::Status status) = 0;

  // When Enqueue took it (for GroupCommitTiming::waited).
  absl::Time enqueued_at;
};

class ReferralStoreImpl final : public ReferralStore {
 public:
  // Column families, in the order they are opened.
  enum Family {
    kMeta = 0,  // "default": next seq, known queues
    kReferrals,
    kReady,
    kArrival,
    kLeases,
    kDeadLetters,
    kIdempotency,
    kOutcomes,
    kChildren,
    kDecisions,  // decision stats: time to decision by queue and time
    kNotices,    // referrals each notified queue was told of
    kAudit,      // the audit trail (audit_chain.h)
    kFamilyCount,
  };

  static absl::StatusOr<std::unique_ptr<ReferralStoreImpl>> OpenImpl(
      StoreOptions options);
  ~ReferralStoreImpl() override;

  void Submit(SubmitCommand command, Done<SubmitResult> done) override;
  void Claim(ClaimCommand command,
             Done<std::vector<StoredReferral>> done) override;
  void Extend(ExtendCommand command, Done<absl::Time> done) override;
  void Release(ReleaseCommand command,
               Done<::referral::v1::ReferralState> done) override;
  void Decide(DecideCommand command, Done<absl::Time> done) override;
  void AcknowledgeOutcome(AcknowledgeCommand command,
                          Done<AcknowledgeResult> done) override;
  void RequeueDeadLetter(RequeueCommand command,
                         Done<std::string> done) override;
  void ExpireLeases(Done<int> done) override;
  void RecordAccess(AccessRecord access, Done<absl::Time> done) override;
  absl::StatusOr<std::vector<AuditRecord>> ExportAudit(absl::Time from,
                                                       absl::Time to,
                                                       int limit) override;
  absl::StatusOr<AuditVerification> VerifyAudit() override;

  absl::StatusOr<StoredReferral> GetReferral(
      std::string_view referral_id) override;
  absl::StatusOr<ReferralPage> ListQueue(std::string_view queue, int page_size,
                                         std::string_view page_token) override;
  absl::StatusOr<ReferralPage> ListOutcomes(
      std::string_view agency_id, int page_size,
      std::string_view page_token) override;
  absl::StatusOr<ReferralPage> ListDeadLetters(
      std::string_view queue, int page_size,
      std::string_view page_token) override;
  absl::StatusOr<ReferralPage> ListNotices(
      std::string_view queue, int page_size,
      std::string_view page_token) override;
  std::vector<QueueCounts> GetQueueCounts(absl::Time now) override;
  std::vector<OutcomeBacklog> GetOutcomeBacklog(
      absl::Time now, absl::Duration acknowledge_within) override;
  int64_t ReadyCount(std::string_view queue) override;
  bool KnowsQueue(std::string_view queue) override;
  StoreStatistics GetStoreStatistics() override;
  absl::Status WriteHealth() override;
  void CreateBackup(std::string backup_dir, Done<BackupInfo> done) override;

  // Diagnostics (referral_store_internal.h).
  internal::SeekCost last_claim_seek_cost() const;
  absl::StatusOr<internal::SeekCost> NaiveHeadSeekCost(std::string_view queue);
  std::shared_ptr<const rocksdb::Snapshot> NewSnapshot();
  void FailNextWrite(internal::WriteFailure failure);
  void HangNextResume(absl::Duration limit);

 private:
  ReferralStoreImpl(StoreOptions options, std::unique_ptr<rocksdb::Env> env,
                    std::shared_ptr<rocksdb::Logger> info_log,
                    std::shared_ptr<BackgroundErrorListener> error_listener,
                    rocksdb::DB* db,
                    std::vector<rocksdb::ColumnFamilyHandle*> families);

  rocksdb::ColumnFamilyHandle* cf(Family family) const {
    return families_[family];
  }

  // --- Open. ---------------------------------------------------------------
  absl::Status Recover();
  void StartThreads();

  // --- Group commit (commit thread). ---------------------------------------
  void Enqueue(std::unique_ptr<Op> op);
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
  void RunGroup(std::vector<std::unique_ptr<Op>>& ops);
  // Hands each op, with its result, to the completion pool.
  void CompleteOnPool(std::vector<std::unique_ptr<Op>>& ops,
                      std::vector<absl::Status>& results);
  // Moves every head whose first key was erased in this group past the
  // tombstones, reading through the batch.
  absl::Status AdvanceHeads(Group& group);
  // Appends `entries` to the group's batch as the next links of the chain.
  absl::Status AppendAudit(Group& group, std::vector<AuditEntry> entries);
  // Installs the group's in-memory effects (and, if it wrote, a snapshot).
  void Publish(Group& group, bool wrote);
  void ReaperLoop();

  // --- Write health (commit and reaper threads). ---------------------------
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
  // DB::Resume, given at most `limit`: RocksDB 7.8 can wait in it forever
  // for a flush that a failed background flush left unscheduled (a
  // memtable that filled up just as the disk did; facebook/rocksdb#15030).
  // Resume then runs on in resume_thread_ and the store needs reopening:
  // returns Aborted, and every later call too.
  rocksdb::Status ResumeWithin(absl::Duration limit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(recovery_mu_);

  // --- Backups (backup thread, referral_backup.cc). -------------------------
  void BackupLoop();
  absl::StatusOr<BackupInfo> RunBackup(const std::string& backup_dir);

  // --- Mutations (referral_mutations.cc), run on the commit thread. --------
  // `fingerprint` is Fingerprint(command.referral), computed by the caller's
  // thread before the submission was queued. Moves the referral out of
  // `command` into the stored record.
  absl::StatusOr<SubmitResult> ApplySubmit(
      SubmitCommand& command, const absl::StatusOr<std::string>& fingerprint,
      Group& group);
  absl::StatusOr<std::vector<StoredReferral>> ApplyClaim(
      const ClaimCommand& command, Group& group);
  absl::StatusOr<absl::Time> ApplyExtend(const ExtendCommand& command,
                                         Group& group);
  absl::StatusOr<::referral::v1::ReferralState> ApplyRelease(
      const ReleaseCommand& command, Group& group);
  absl::StatusOr<absl::Time> ApplyDecide(const DecideCommand& command,
                                         Group& group);
  absl::StatusOr<AcknowledgeResult> ApplyAcknowledge(
      const AcknowledgeCommand& command, Group& group);
  absl::StatusOr<std::string> ApplyRequeue(const RequeueCommand& command,
                                           Group& group);
  // Appends the id of each referral whose lease expired to `expired_ids`.
  absl::StatusOr<int> ApplyExpireLeases(Group& group,
                                        std::vector<std::string>* expired_ids);

  // Record and index helpers. Index keys are always derived from the record,
  // so a record and its index entries cannot disagree.
  absl::StatusOr<StoredReferral> LoadBySeq(Group& group, uint64_t seq);
  absl::StatusOr<StoredReferral> LoadById(Group& group,
                                          std::string_view referral_id);
  absl::Status PutRecord(Group& group, const StoredReferral& record);
  absl::Status AddToQueue(Group& group, QueueState& queue,
                          const StoredReferral& record);
  absl::Status RemoveFromQueue(Group& group, QueueState& queue,
                               const StoredReferral& record);
  absl::Status AddLease(Group& group, QueueState& queue,
                        const StoredReferral& record);
  absl::Status RemoveLease(Group& group, QueueState& queue,
                           const StoredReferral& record);
  // After a release or lease expiry: back to the queue with a new
  // generation, or to the dead letters once failed_deliveries reaches
  // max_deliveries. Clears the lease. Emits the queue event.
  absl::Status ReturnOrDeadLetter(Group& group, QueueState& queue,
                                  StoredReferral& record, absl::Time now,
                                  ::referral::v1::QueueEvent::Kind kind);
  absl::Status FindEarlierReferrals(Group& group, const SubmitCommand& command,
                                    StoredReferral& record,
                                    int* most_for_one_child);
  // Deletes up to a few decision-stat entries of `queue_name` decided before
  // now - decision_stats_window, from the queue's prune mark on, so the
  // index stays about one window long at a bounded cost per decision.
  absl::Status PruneDecisionStats(Group& group, QueueState& queue,
                                  const std::string& queue_name,
                                  absl::Time now);

  // --- Reads. --------------------------------------------------------------
  std::shared_ptr<const rocksdb::Snapshot> CurrentSnapshot();
  absl::StatusOr<StoredReferral> ReadBySeq(const rocksdb::Snapshot* snapshot,
                                           uint64_t seq);
  // One page of an index range in key order: the stragglers of `head`, then
  // the keys from its low-water mark. `seq_of` extracts the referral from a
  // key (nullopt: not a key of this listing).
  absl::StatusOr<ReferralPage> ListRange(
      Family family, const std::string& prefix, const IndexHead* head,
      const std::shared_ptr<const rocksdb::Snapshot>& snapshot, int page_size,
      std::string_view page_token,
      absl::FunctionRef<std::optional<uint64_t>(std::string_view)> seq_of);
  // Keys in [from, to) at the snapshot.
  absl::StatusOr<int64_t> CountRange(Family family, const std::string& from,
                                     const std::string& to,
                                     const rocksdb::Snapshot* snapshot);
  // Fills the time-to-decision figures of `counts` from the decision-stats
  // entries of its queue decided in [now - window, now].
  absl::Status ReadDecisionStats(absl::Time now,
                                 const rocksdb::Snapshot* snapshot,
                                 QueueCounts& counts);

  const StoreOptions options_;
  // The encrypted Env when options_.encryption_key_file is set, else null
  // (RocksDB's default Env). Declared before db_ so that it is destroyed
  // after it: the DB writes through the Env until it is deleted.
  std::unique_ptr<rocksdb::Env> env_;
  // RocksDB's info log (info_log.h), writing through env_.
  std::shared_ptr<rocksdb::Logger> info_log_;
  std::shared_ptr<BackgroundErrorListener> error_listener_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> families_;
  const rocksdb::WriteOptions sync_write_;

  absl::Mutex queue_mu_;
  std::deque<std::unique_ptr<Op>> pending_ ABSL_GUARDED_BY(queue_mu_);
  bool closing_ ABSL_GUARDED_BY(queue_mu_) = false;

  // Written only by the commit thread (and Open), after each group commit;
  // read by readers and, while building a group, by the commit thread.
  absl::Mutex state_mu_;
  CommittedState committed_ ABSL_GUARDED_BY(state_mu_);

  absl::Mutex reaper_mu_;
  bool reaper_stop_ ABSL_GUARDED_BY(reaper_mu_) = false;

  // Test hook: 0 none, else 1 + internal::WriteFailure for the next write.
  std::atomic<int> injected_write_failure_{0};
  std::atomic<uint64_t> last_claim_keys_skipped_{0};
  std::atomic<uint64_t> last_claim_tombstones_skipped_{0};

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
  // A Resume that has not finished by then never will: it flushes a few
  // memtables of at most 32 MB, which takes well under a second.
  absl::Duration resume_limit_ ABSL_GUARDED_BY(recovery_mu_) =
      absl::Seconds(20);
  // HangNextResume (tests): the next Resume waits until the store closes.
  std::atomic<bool> hang_next_resume_{false};
  absl::Notification release_hung_resume_;
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
