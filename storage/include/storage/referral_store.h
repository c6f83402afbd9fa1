// The durable referral store: referrals, front-door queues, leases,
// idempotency keys, dead letters, outcomes and histories in one embedded
// RocksDB database.
//
// The promise: a mutation's callback sees OK only after its whole change was
// committed as one atomic WriteBatch with a synced write-ahead log. Mutations
// are group-committed by one commit thread, so callers never block on fsync
// and many concurrent requests share one sync. Reads see committed state.
//
// Delivery order within a queue: priority band, then due time, then arrival.
// Queue index keys are laid out so the head of a queue is reached by one
// bounded seek however many entries were claimed (deleted) before it.
#ifndef REFERRAL_STORAGE_REFERRAL_STORE_H_
#define REFERRAL_STORAGE_REFERRAL_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "referral/v1/broker.pb.h"
#include "referral/v1/referral.pb.h"
#include "storage/v1/stored_referral.pb.h"

namespace referral::storage {

using StoredReferral = ::referral::storage::v1::StoredReferral;
using AuditRecord = ::referral::storage::v1::AuditRecord;

// Who a mutation or read is audited as. When principal is empty the
// command's `actor` is recorded as the principal.
struct AuditContext {
  std::string principal;     // the authenticated principal
  std::string on_behalf_of;  // e.g. the worker or user behind a service
};

// A read of personal data, recorded (durably) before it is answered.
struct AccessRecord {
  std::string principal;
  std::string on_behalf_of;
  // "status_read", "list_queue", "watch", "list_outcomes", "list_notices",
  // "list_dead_letters", "audit_export", ...
  std::string action;
  std::string referral_id;  // may be empty (e.g. a listing)
  std::string result;       // "OK" or the status code name
};

// The result of re-walking the audit chain from its first record.
struct AuditVerification {
  uint64_t records_checked = 0;
  bool intact = true;
  // When !intact: the first sequence number whose record is missing, edited
  // or out of chain.
  uint64_t first_bad_seq = 0;
  std::string problem;  // what was wrong; never record content
};

// Called with the result once the mutation is durable (or has failed and
// left nothing behind). Runs on the commit thread: keep it short and never
// call back into the store synchronously from it.
template <typename T>
using Done = absl::AnyInvocable<void(absl::StatusOr<T>) &&>;

// Where one group commit's time went: what an operator needs to tell a slow
// disk (synced) from a saturated commit thread (waited, applied).
struct GroupCommitTiming {
  int mutations = 0;  // joined into the one synced write
  // From the oldest mutation's arrival at the store to the group's start.
  absl::Duration waited;
  // Applying the mutations (reads, checks, index and audit entries).
  absl::Duration applied;
  // The synced write (write-ahead log append, fdatasync, memtables).
  absl::Duration synced;
};

struct StoreOptions {
  // The data directory; created if missing.
  std::string path;
  // Encryption at rest: a key file (64 hex digits, mode 0600 or 0640) kept
  // outside `path`. Empty: the files are written unencrypted. A store
  // written with a key can only be opened with that same key; opening it
  // with another fails with FAILED_PRECONDITION and changes nothing.
  std::string encryption_key_file;
  // A claimed referral whose release or lease expiry brings its failed
  // deliveries to this number moves to the queue's dead letters.
  int max_deliveries = 5;
  // How often the store's own reaper returns expired leases to their queue.
  // Zero disables the reaper (tests then call ExpireLeases themselves).
  absl::Duration lease_check_interval = absl::Milliseconds(200);
  // The time source for received, claimed, lease and history times.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  // Called on the commit thread after each group commit with the queue
  // events it produced, in commit order (for WatchQueue).
  std::function<void(const std::vector<::referral::v1::QueueEvent>&)>
      on_committed;
  // Called on the commit thread after each group commit that wrote, with
  // where its time went (for metrics: keep it cheap).
  std::function<void(const GroupCommitTiming&)> on_group_committed;
  // Called when the store's ability to commit changes between OK and not
  // OK (see WriteHealth), with the new health; never twice with the same
  // side. Runs on the commit thread or the reaper thread: keep it short and
  // never call a mutation synchronously from it (WriteHealth is fine).
  std::function<void(const absl::Status&)> on_write_health_changed;
  // Largest number of mutations joined into one synced write.
  int max_group_size = 512;
  // Threads that run the mutations' `done` callbacks after their group is
  // committed (at least 1). Callbacks of one group may run in any order and
  // at once; a callback may call the store, but must not wait for another
  // mutation to commit.
  int completion_threads = 2;
  // The window of the time-to-decision figures in QueueCounts: decisions
  // made from now - window to now, both included. Older entries of the decision
  // index are pruned as new decisions are recorded, so the index holds about
  // one window of decisions. Must be positive.
  absl::Duration decision_stats_window = absl::Hours(24 * 28);
};

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

struct RepeatedConcernPolicy {
  absl::Duration window = absl::Hours(24 * 365);
  // Earlier referrals about one child within the window at which the new
  // referral is marked a repeated concern and raised one priority band.
  int threshold = 3;
};

struct SubmitCommand {
  std::string agency_id;
  std::string idempotency_key;
  ::referral::v1::Referral referral;
  absl::Time received_at;
  Placement placement;
  std::vector<ChildMatchKey> child_keys;
  RepeatedConcernPolicy repeated_concern;
  std::string actor;  // e.g. "agency:cambs-police"
  AuditContext audit;
};

struct SubmitResult {
  // The stored record (the original one when duplicate is true).
  StoredReferral record;
  bool duplicate = false;
};

struct ClaimCommand {
  std::string queue;
  int max = 1;
  absl::Duration lease = absl::Minutes(30);
  std::string worker;
  std::string actor;
  AuditContext audit;
};

struct ExtendCommand {
  std::string referral_id;
  std::string lease_token;
  absl::Duration lease;  // from now
  std::string actor;
  AuditContext audit;
};

struct ReleaseCommand {
  std::string referral_id;
  std::string lease_token;
  std::string reason;
  std::string actor;
  AuditContext audit;
};

struct DecideCommand {
  std::string referral_id;
  std::string lease_token;
  ::referral::v1::Decision decision = ::referral::v1::DECISION_UNSPECIFIED;
  std::string rationale;
  std::string feedback;
  std::string actor;
  AuditContext audit;
};

struct AcknowledgeCommand {
  std::string referral_id;
  std::string agency_id;  // must be the referral's agency, else NOT_FOUND
  std::string actor;
  AuditContext audit;
};

struct AcknowledgeResult {
  absl::Time acknowledged_at;
  bool already_acknowledged = false;
};

struct RequeueCommand {
  std::string referral_id;
  std::string actor;
  AuditContext audit;
};

// One page of a listing, in the listing's order.
struct ReferralPage {
  std::vector<StoredReferral> referrals;
  std::string next_page_token;  // empty on the last page
};

struct QueueCounts {
  std::string queue;
  int64_t ready = 0;
  int64_t claimed = 0;
  int64_t dead_letters = 0;
  std::optional<absl::Time> oldest_ready_received_at;
  // The due time of that same referral (the oldest ready one by receipt),
  // so operators can see how far the head of the backlog is past due.
  std::optional<absl::Time> oldest_ready_due_at;
  int64_t overdue = 0;          // ready or claimed with due_at <= now
  int64_t due_within_hour = 0;  // ready or claimed, now < due_at <= now+1h

  // Time to decision (received -> decided) of the queue's referrals decided
  // within decision_window up to now. Percentiles are nearest-rank over those
  // decisions and unset when there are none. At most the newest
  // kMaxDecisionsRead decisions of a queue are read.
  static constexpr int64_t kMaxDecisionsRead = 1'000'000;
  absl::Duration decision_window;
  int64_t decisions_in_window = 0;
  std::optional<absl::Duration> time_to_decision_p50;
  std::optional<absl::Duration> time_to_decision_p90;
  std::optional<absl::Duration> time_to_decision_p99;

  // Referrals received in the last 24 hours that this queue was notified of
  // (routing's `notify`) while their work item lives in another queue.
  int64_t notices_last_24h = 0;
};

// Outcomes an agency has not yet acknowledged (the referrer-feedback backlog).
struct OutcomeBacklog {
  std::string agency_id;
  int64_t unacknowledged = 0;
  // Of those, decided at or before now - acknowledge_within.
  int64_t overdue = 0;
  // The decision time of the oldest unacknowledged outcome.
  absl::Time oldest_decided_at;
};

// What the store occupies, for the operators' metrics.
struct StoreStatistics {
  // Every file under the data directory (database, logs, key check): what
  // the disk actually holds, encryption overhead included.
  int64_t disk_bytes = 0;
  // RocksDB's estimate of what compaction still has to rewrite, summed over
  // the column families; it grows when writes outpace compaction.
  int64_t pending_compaction_bytes = 0;
};

// One backup in a backup directory.
struct BackupInfo {
  uint32_t backup_id = 0;  // 1, 2, ... in order of creation
  absl::Time created_at;   // whole seconds
  // What the backup holds (its files before any encryption overhead; files
  // shared with other backups count in each).
  int64_t size_bytes = 0;
  int32_t file_count = 0;
};

// A backup directory and the key its backups are encrypted with (empty for
// a store without encryption at rest). A directory holds backups of one
// kind only: encrypted ones carry a KEYCHECK file for their key, and are
// refused without it or with another key.
struct BackupLocation {
  std::string backup_dir;
  std::string encryption_key_file;
};

class ReferralStore {
 public:
  // Opens (creating if needed) the store at options.path and recovers its
  // queues, counts and leases. Leases that expired while closed are returned
  // to their queues by the first reaper pass.
  static absl::StatusOr<std::unique_ptr<ReferralStore>> Open(
      StoreOptions options);

  // Finishes every accepted mutation, stops the commit thread and closes the
  // database cleanly.
  virtual ~ReferralStore() = default;

  ReferralStore(const ReferralStore&) = delete;
  ReferralStore& operator=(const ReferralStore&) = delete;

  // --- Mutations: each is one synced WriteBatch, then `done`. -------------
  // Errors: NOT_FOUND unknown referral; FAILED_PRECONDITION wrong state or
  // lease token; ALREADY_EXISTS idempotency key reused for another referral;
  // INVALID_ARGUMENT malformed id; RESOURCE_EXHAUSTED disk full;
  // UNAVAILABLE any other failure to commit (nothing was stored).

  // Stores a referral and enqueues it. A repeated (agency, idempotency key)
  // with the same referral returns the original with duplicate = true.
  virtual void Submit(SubmitCommand command, Done<SubmitResult> done) = 0;
  // Leases up to `max` ready referrals in delivery order (fewer, or none,
  // when the queue holds fewer). Each record carries its new lease.
  virtual void Claim(ClaimCommand command,
                     Done<std::vector<StoredReferral>> done) = 0;
  // Returns the new lease expiry.
  virtual void Extend(ExtendCommand command, Done<absl::Time> done) = 0;
  // Returns the referral's new state: QUEUED or DEAD_LETTERED.
  virtual void Release(ReleaseCommand command,
                       Done<::referral::v1::ReferralState> done) = 0;
  // Returns the decision time.
  virtual void Decide(DecideCommand command, Done<absl::Time> done) = 0;
  virtual void AcknowledgeOutcome(AcknowledgeCommand command,
                                  Done<AcknowledgeResult> done) = 0;
  // Moves a dead letter back to its queue; returns the queue.
  virtual void RequeueDeadLetter(RequeueCommand command,
                                 Done<std::string> done) = 0;
  // Returns every lease that expired by now to its queue (or to the dead
  // letters); returns how many expired.
  virtual void ExpireLeases(Done<int> done) = 0;

  // --- Audit trail. ---------------------------------------------------------
  // Every mutation above appends one audit record per referral it acts on
  // (claims and lease expiry: one per referral; a failed mutation: one with
  // its status code, its own changes rolled back), in the same synced
  // WriteBatch as its change. Actions: "submit", "claim", "extend",
  // "release", "decide", "acknowledge_outcome", "requeue", "lease_expired".
  // An empty claim and a reaper pass that expired nothing append nothing.
  // No method changes or removes a record.

  // Appends one audit record for a read and returns its time once it is
  // durable: callers answer the read only after `done` sees OK.
  virtual void RecordAccess(AccessRecord access, Done<absl::Time> done) = 0;
  // Records with from <= at <= to in sequence order, at most `limit`
  // (INVALID_ARGUMENT unless positive).
  virtual absl::StatusOr<std::vector<AuditRecord>> ExportAudit(absl::Time from,
                                                               absl::Time to,
                                                               int limit) = 0;
  // Recomputes the chain from the first record (see AuditVerification).
  virtual absl::StatusOr<AuditVerification> VerifyAudit() = 0;

  // --- Reads of committed state. -------------------------------------------

  // NOT_FOUND for an unknown id, INVALID_ARGUMENT for a malformed one.
  virtual absl::StatusOr<StoredReferral> GetReferral(
      std::string_view referral_id) = 0;
  // Ready referrals of a queue in delivery order.
  virtual absl::StatusOr<ReferralPage> ListQueue(
      std::string_view queue, int page_size, std::string_view page_token) = 0;
  // Decided referrals of an agency whose outcome it has not acknowledged,
  // oldest decision first.
  virtual absl::StatusOr<ReferralPage> ListOutcomes(
      std::string_view agency_id, int page_size,
      std::string_view page_token) = 0;
  // Dead letters of a queue, in the order they were dead-lettered.
  virtual absl::StatusOr<ReferralPage> ListDeadLetters(
      std::string_view queue, int page_size, std::string_view page_token) = 0;
  // Referrals a queue was notified of (Placement::notified_queues), newest
  // receipt first; each record is the referral as it is now.
  virtual absl::StatusOr<ReferralPage> ListNotices(
      std::string_view queue, int page_size, std::string_view page_token) = 0;
  // Counts for every queue that has ever held a referral or a notice, by
  // queue name.
  virtual std::vector<QueueCounts> GetQueueCounts(absl::Time now) = 0;
  // Every agency with unacknowledged outcomes, by agency id. An outcome is
  // overdue when decided at or before now - acknowledge_within.
  virtual std::vector<OutcomeBacklog> GetOutcomeBacklog(
      absl::Time now, absl::Duration acknowledge_within) = 0;
  // Ready count of one queue (cheap: kept in memory).
  virtual int64_t ReadyCount(std::string_view queue) = 0;
  // Whether the queue has ever held a referral or a notice (cheap: kept in
  // memory); the queues GetQueueCounts lists.
  virtual bool KnowsQueue(std::string_view queue) = 0;

  // --- Operations. ----------------------------------------------------------

  // Cheap enough for every metrics scrape: a walk of the data directory and
  // one in-memory property per column family.
  virtual StoreStatistics GetStoreStatistics() = 0;

  // OK while commits succeed. After a failed commit: its error
  // (RESOURCE_EXHAUSTED for a full disk, UNAVAILABLE otherwise), until the
  // store has shown it can write again. Meanwhile it tries to recover by
  // itself, at most once a second: before the next commit that has
  // something to write, and on the reaper's tick (so an idle store recovers
  // too), once a test file can be written to the data directory, by
  // resuming RocksDB from its background error and making a small synced
  // write. Commits refused meanwhile store nothing. Failures RocksDB 7.8
  // treats as fatal (an I/O error other than a full disk on its log, or
  // failing to create a new log) stay until the broker restarts; the
  // status then says so.
  virtual absl::Status WriteHealth() = 0;

  // Takes an online, consistent backup into `backup_dir` (created if
  // missing; never inside the data directory) while the store keeps
  // committing: the copy runs on the store's backup thread, never on the
  // commit thread. Every mutation whose `done` saw OK before this call is in
  // the backup: it copies the table files and the synced write-ahead log
  // as it stands when the backup starts, rather than forcing a flush. One
  // backup at a time: while one runs, another request fails at once with
  // ABORTED (retry when it has finished). With encryption at rest the
  // backup is encrypted with the store's key. Old backups are kept (no
  // pruning). `done` runs on the backup thread.
  virtual void CreateBackup(std::string backup_dir, Done<BackupInfo> done) = 0;

  // The backups in a directory, oldest first (empty when the directory does
  // not exist). Safe while a broker writes to the same directory, and
  // without any store open. FAILED_PRECONDITION when the key does not fit
  // the directory (missing, wrong, or given for unencrypted backups).
  static absl::StatusOr<std::vector<BackupInfo>> ListBackups(
      const BackupLocation& location);
  // Reads a whole backup back and checks every file against the checksum
  // taken when it was written. NOT_FOUND for an unknown id; DATA_LOSS
  // naming the first damaged or missing file.
  static absl::StatusOr<BackupInfo> VerifyBackup(const BackupLocation& location,
                                                 uint32_t backup_id);
  // Rebuilds a data directory from a backup (nullopt: the latest), for
  // ReferralStore::Open with the same key file. Offline: `data_dir` must
  // not exist or be empty (FAILED_PRECONDITION otherwise), and is left as
  // it was when the restore fails. Every file is checked against its
  // checksum as it is copied (DATA_LOSS if one does not match).
  static absl::Status RestoreBackup(const BackupLocation& location,
                                    std::optional<uint32_t> backup_id,
                                    const std::string& data_dir);

 protected:
  ReferralStore() = default;
};

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_REFERRAL_STORE_H_
