// The durable referral store: referrals, front-door queues, leases,
// idempotency keys, dead letters, outcomes, histories and the audit trail in
// one embedded RocksDB database.
//
// The promise: a change's `done` sees OK only after the whole change (and
// its audit record) was committed as one atomic WriteBatch with a synced
// write-ahead log. Changes are group-committed by one commit thread, so
// callers never block on fsync and many concurrent requests share one sync.
// Reads see committed state.
//
// Delivery order within a queue: priority band, then due time, then arrival.
// Queue index keys are laid out so the head of a queue is reached by one
// bounded seek however many entries were claimed (deleted) before it.
//
// Threads: every method may be called from any thread at once. Commit only
// queues the change and returns; the commit thread applies queued changes
// in order, one group at a time, and their `done` callbacks run on the
// completion threads (StoreOptions::completion_threads). Reads run on the
// caller's thread against the last published group commit and never wait
// for a commit in progress. A reaper thread commits ExpireLeasesCommand
// every lease_check_interval; a backup thread runs CreateBackup.
//
// The other public headers: commands.h (the changes), listings.h (what
// reads return), store_options.h, audit_trail.h, backups.h.
#ifndef REFERRAL_STORAGE_REFERRAL_STORE_H_
#define REFERRAL_STORAGE_REFERRAL_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/backups.h"
#include "storage/commands.h"
#include "storage/listings.h"
#include "storage/store_options.h"

namespace referral::storage {

class ReferralStore {
 public:
  // Opens (creating if needed) the store at options.path and recovers its
  // queues, counts and leases. Leases that expired while closed are returned
  // to their queues by the first reaper pass. DATA_LOSS for a damaged store.
  static absl::StatusOr<std::unique_ptr<ReferralStore>> Open(
      StoreOptions options);

  // Finishes every accepted change, stops the store's threads and closes the
  // database cleanly.
  virtual ~ReferralStore() = default;

  ReferralStore(const ReferralStore&) = delete;
  ReferralStore& operator=(const ReferralStore&) = delete;

  // Commits one change (commands.h), then calls `done` with its result.
  // Errors: NOT_FOUND unknown referral; FAILED_PRECONDITION wrong state or
  // lease token; ALREADY_EXISTS idempotency key reused for another referral;
  // INVALID_ARGUMENT malformed command; RESOURCE_EXHAUSTED disk full;
  // UNAVAILABLE any other failure to commit, or the store is closing
  // (nothing was stored).
  template <typename Command>
  void Commit(Command command, Done<typename Command::Result> done) {
    Enqueue(NewMutation(std::move(command), std::move(done)));
  }

  // NOT_FOUND for an unknown id, INVALID_ARGUMENT for a malformed one.
  virtual absl::StatusOr<StoredReferral> GetReferral(
      std::string_view referral_id) = 0;

  // One page of a listing (listings.h) of the queue or agency `key`.
  // page_size <= 0: 50; at most 1000. INVALID_ARGUMENT for a malformed key
  // or a page token that is not one of this listing.
  virtual absl::StatusOr<ReferralPage> List(Listing listing,
                                            std::string_view key, int page_size,
                                            std::string_view page_token) = 0;

  // The counts `request` asks for (listings.h).
  virtual StoreCounts GetCounts(const CountsRequest& request) = 0;

  // The ready count of a queue that has ever held a referral or a notice;
  // nullopt for any other name. Cheap: kept in memory.
  virtual std::optional<int64_t> ReadyCount(std::string_view queue) = 0;

  // OK while commits succeed. After a failed commit: its error
  // (RESOURCE_EXHAUSTED for a full disk, UNAVAILABLE otherwise), until the
  // store has shown it can write again. Meanwhile it tries to recover by
  // itself, at most once a second: before the next commit that has
  // something to write, and on the reaper's tick (so an idle store recovers
  // too), once a test file can be written to the data directory, by
  // resuming RocksDB from its background error and making a small synced
  // write. Commits refused meanwhile store nothing. Failures RocksDB 7.8
  // treats as fatal (an I/O error other than a full disk on its log that
  // the file system does not mark retryable, or failing to create a new
  // log) stay until the broker restarts; the status then says so.
  virtual absl::Status WriteHealth() = 0;

  // Takes an online, consistent backup into `backup_dir` (created if
  // missing; never inside the data directory) while the store keeps
  // committing: the copy runs on the store's backup thread, never on the
  // commit thread. Every change whose `done` saw OK before this call is in
  // the backup: it copies the table files and the synced write-ahead log
  // as it stands when the backup starts, rather than forcing a flush. One
  // backup at a time: while one runs, another request fails at once with
  // ABORTED (retry when it has finished). With encryption at rest the
  // backup is encrypted with the store's key. Old backups are kept (no
  // pruning). `done` runs on the backup thread. Listing, verifying and
  // restoring backups: backups.h.
  virtual void CreateBackup(std::string backup_dir, Done<BackupInfo> done) = 0;

 protected:
  ReferralStore() = default;

 private:
  // Queues a change for the commit thread; answers UNAVAILABLE once the
  // store is closing.
  virtual void Enqueue(MutationPtr mutation) = 0;
};

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_REFERRAL_STORE_H_
