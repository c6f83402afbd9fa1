#include "group.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "key_codec.h"
#include "record_util.h"
#include "rocksdb/comparator.h"

namespace referral::storage {
namespace {

// A DB iterator reads its upper bound through a pointer held in the
// ReadOptions it was made with; this wrapper keeps that Slice alive.
class BoundedIterator final : public rocksdb::Iterator {
 public:
  BoundedIterator(rocksdb::Iterator* inner,
                  std::unique_ptr<rocksdb::Slice> bound)
      : inner_(inner), bound_(std::move(bound)) {}
  bool Valid() const override { return inner_->Valid(); }
  void SeekToFirst() override { inner_->SeekToFirst(); }
  void SeekToLast() override { inner_->SeekToLast(); }
  void Seek(const rocksdb::Slice& target) override { inner_->Seek(target); }
  void SeekForPrev(const rocksdb::Slice& target) override {
    inner_->SeekForPrev(target);
  }
  void Next() override { inner_->Next(); }
  void Prev() override { inner_->Prev(); }
  rocksdb::Slice key() const override { return inner_->key(); }
  rocksdb::Slice value() const override { return inner_->value(); }
  rocksdb::Status status() const override { return inner_->status(); }

 private:
  std::unique_ptr<rocksdb::Iterator> inner_;  // destroyed before bound_
  std::unique_ptr<rocksdb::Slice> bound_;
};

}  // namespace

QueueState QueueState::Empty(const std::string& name) {
  const std::string prefix = keys::NamePrefix(name);
  QueueState fresh;
  fresh.ready = IndexHead(prefix, 0);
  fresh.arrival = IndexHead(prefix, 0);
  fresh.dead_letters = IndexHead(prefix, 0);
  return fresh;
}

QueueState QueueState::OverlayOn(const QueueState& committed) {
  QueueState overlay;
  overlay.ready = IndexHead::OverlayOn(committed.ready);
  overlay.arrival = IndexHead::OverlayOn(committed.arrival);
  overlay.dead_letters = IndexHead::OverlayOn(committed.dead_letters);
  overlay.claimed_due = committed.claimed_due;
  overlay.persisted = committed.persisted;
  overlay.decisions_pruned_to = committed.decisions_pruned_to;
  return overlay;
}

void QueueState::Absorb(QueueState&& overlay) {
  ready.Absorb(std::move(overlay.ready));
  arrival.Absorb(std::move(overlay.arrival));
  dead_letters.Absorb(std::move(overlay.dead_letters));
  claimed_due = std::move(overlay.claimed_due);
  persisted = overlay.persisted;
  decisions_pruned_to = std::move(overlay.decisions_pruned_to);
}

Group::Group(const CommittedState& committed, StoreCore& core)
    : committed_(committed),
      core_(core),
      batch_(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true),
      next_seq_(committed.next_seq),
      audit_head_(committed.audit_head) {}

QueueState* Group::Queue(const std::string& name, bool create) {
  auto it = queues_.find(name);
  if (it != queues_.end()) return &it->second;
  auto committed = committed_.queues.find(name);
  if (committed != committed_.queues.end()) {
    return &queues_.emplace(name, QueueState::OverlayOn(committed->second))
                .first->second;
  }
  if (!create) return nullptr;
  QueueState* created =
      &queues_.emplace(name, QueueState::Empty(name)).first->second;
  // If the mutation that saw this queue first fails, forget the queue.
  undo_.Record([this, name] { queues_.erase(name); });
  return created;
}

IndexHead& Group::Outcomes(const std::string& agency_id) {
  auto it = outcomes_.find(agency_id);
  if (it != outcomes_.end()) return it->second;
  auto committed = committed_.outcomes.find(agency_id);
  IndexHead head = committed != committed_.outcomes.end()
                       ? IndexHead::OverlayOn(committed->second)
                       : IndexHead(keys::NamePrefix(agency_id), 0);
  return outcomes_.emplace(agency_id, std::move(head)).first->second;
}

IndexHead& Group::Leases() {
  if (!leases_.has_value()) leases_ = IndexHead::OverlayOn(committed_.leases);
  return *leases_;
}

absl::StatusOr<std::optional<std::string>> Group::Get(Family family,
                                                      const std::string& key) {
  std::string value;
  rocksdb::Status s = batch_.GetFromBatchAndDB(core_.db, rocksdb::ReadOptions(),
                                               cf(family), key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocksStatus(s, "read");
  return std::optional<std::string>(std::move(value));
}

std::unique_ptr<rocksdb::Iterator> Group::NewIterator(
    Family family, const std::string* upper) {
  std::unique_ptr<rocksdb::Slice> bound;
  rocksdb::ReadOptions read;
  if (upper != nullptr) {
    bound = std::make_unique<rocksdb::Slice>(*upper);
    read.iterate_upper_bound = bound.get();
  }
  rocksdb::Iterator* base = core_.db->NewIterator(read, cf(family));
  return std::make_unique<BoundedIterator>(
      batch_.NewIteratorWithBase(cf(family), base), std::move(bound));
}

}  // namespace referral::storage
