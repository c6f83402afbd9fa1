// How a ReferralStore is opened, and what it reports back while it runs:
// the changes each group commit made, where its time went, and whether the
// store can write.
#ifndef REFERRAL_STORAGE_STORE_OPTIONS_H_
#define REFERRAL_STORAGE_STORE_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "referral/v1/referral.pb.h"

namespace rocksdb {
class FileSystem;
}  // namespace rocksdb

namespace referral::storage {

// One change to a queue, committed: what a watcher of the queue, the
// lifecycle log and the metrics are told of.
struct CommittedChange {
  // server/src/services/queue_watchers.cc maps these in this order.
  enum class Kind {
    kArrived,
    kClaimed,
    kExtended,
    kReleased,
    kLeaseExpired,
    kDecided,
    kDeadLettered,
    kRequeued,
  };
  Kind kind = Kind::kArrived;
  std::string queue;
  std::string referral_id;
  absl::Time at;
  ::referral::v1::PriorityBand band = ::referral::v1::PRIORITY_BAND_UNSPECIFIED;
  absl::Time due_at;
  // The referring agency's type (every kind), for counting intake.
  ::referral::v1::AgencyType agency_type =
      ::referral::v1::AGENCY_TYPE_UNSPECIFIED;
  // kDecided: the decision recorded.
  ::referral::v1::Decision decision = ::referral::v1::DECISION_UNSPECIFIED;
  std::string worker;  // kClaimed, kExtended: who holds the lease
  // kClaimed: which delivery this is (1 = first; more = a redelivery after a
  // release or an expired lease).
  int32_t delivery_attempt = 0;
  // kArrived: this queue is only notified of the referral (routing's
  // `notify`) and its work item lives in another queue.
  bool notice_only = false;
};

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
  // Zero disables the reaper (tests then commit ExpireLeasesCommand).
  absl::Duration lease_check_interval = absl::Milliseconds(200);
  // The time source for received, claimed, lease and history times.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  // Called on the commit thread after each group commit with the changes it
  // made, in commit order (for WatchQueue).
  std::function<void(const std::vector<CommittedChange>&)> on_committed;
  // Called on the commit thread after each group commit that wrote, with
  // where its time went (for metrics: keep it cheap).
  std::function<void(const GroupCommitTiming&)> on_group_committed;
  // Called when the store's ability to commit changes between OK and not
  // OK (see ReferralStore::WriteHealth), with the new health; never twice
  // with the same side. Runs on the commit thread or the reaper thread: keep
  // it short and never commit synchronously from it (WriteHealth is fine).
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
  // How long RocksDB's DB::Resume may take when the store recovers from a
  // failed write (see WriteHealth). It flushes a few memtables of at most
  // 32 MB, which takes well under a second; one that has not finished by
  // then never will, and the store asks for a restart.
  absl::Duration resume_limit = absl::Seconds(20);
  // The file system every file of the store goes through (under the
  // encryption, when there is a key). Null: the local one. Tests give a
  // wrapper that injects faults, as RocksDB's own tests do.
  std::shared_ptr<rocksdb::FileSystem> file_system;
};

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_STORE_OPTIONS_H_
