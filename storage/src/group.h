// The state a group commit works on: the column families and options every
// mutation reads (StoreCore), the in-memory view of the queues as committed
// (CommittedState), and one group's write batch with its working copies of
// that view (Group).
//
// Threads: a Group belongs to the commit thread. StoreCore is fixed once the
// store is open, except its diagnostics counters (atomics).
#ifndef REFERRAL_STORAGE_SRC_GROUP_H_
#define REFERRAL_STORAGE_SRC_GROUP_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audit_chain.h"
#include "index_head.h"
#include "rocksdb/db.h"
#include "rocksdb/utilities/write_batch_with_index.h"
#include "storage/store_options.h"

namespace referral::storage {

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

// What mutations and reads share of the open store.
struct StoreCore {
  const StoreOptions& options;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> families;
  // The ready-index scan of the most recent claim (referral_store_internal.h).
  std::atomic<uint64_t> last_claim_keys_skipped{0};
  std::atomic<uint64_t> last_claim_tombstones_skipped{0};

  rocksdb::ColumnFamilyHandle* cf(Family family) const {
    return families[family];
  }
};

// The in-memory view of one queue, rebuilt at Open from its index keys.
struct QueueState {
  // A fresh queue: every index head at the start of the queue's ranges.
  static QueueState Empty(const std::string& name);
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
// in-memory state it touches.
class Group {
 public:
  Group(const CommittedState& committed, StoreCore& core);

  StoreCore& core() { return core_; }
  const StoreOptions& options() const { return core_.options; }
  rocksdb::ColumnFamilyHandle* cf(Family family) const {
    return core_.cf(family);
  }
  rocksdb::WriteBatchWithIndex& batch() { return batch_; }
  UndoLog& undo() { return undo_; }
  std::vector<CommittedChange>& changes() { return changes_; }

  // The group's copy of a queue (copied from the committed state on first
  // use). With create = false, nullptr for a queue never seen.
  QueueState* Queue(const std::string& name, bool create);
  IndexHead& Outcomes(const std::string& agency_id);
  IndexHead& Leases();
  uint64_t& next_seq() { return next_seq_; }
  // The audit chain as amended by this group (published with it).
  audit::ChainHead& audit_head() { return audit_head_; }

  // Reads through the batch: nullopt when absent.
  absl::StatusOr<std::optional<std::string>> Get(Family family,
                                                 const std::string& key);
  // An iterator over the database as amended by the batch, from `lower` up
  // to `upper` (exclusive; may be empty for "no bound"). The caller still
  // checks the upper bound: the batch's delta does not honour it.
  std::unique_ptr<rocksdb::Iterator> NewIterator(Family family,
                                                 const std::string* upper);
  std::map<std::string, QueueState, std::less<>>& touched_queues() {
    return queues_;
  }
  std::map<std::string, IndexHead, std::less<>>& touched_outcomes() {
    return outcomes_;
  }
  std::optional<IndexHead>& touched_leases() { return leases_; }

 private:
  const CommittedState& committed_;  // read only by the commit thread
  StoreCore& core_;
  rocksdb::WriteBatchWithIndex batch_;
  UndoLog undo_;
  std::vector<CommittedChange> changes_;
  std::map<std::string, QueueState, std::less<>> queues_;
  std::map<std::string, IndexHead, std::less<>> outcomes_;
  std::optional<IndexHead> leases_;
  uint64_t next_seq_;
  audit::ChainHead audit_head_;
};

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_SRC_GROUP_H_
