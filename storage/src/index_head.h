// Where the live keys of one index range (a queue's ready entries, its
// arrivals, its dead letters, an agency's outcomes, all leases) begin.
//
// RocksDB deletes by writing tombstones; until compaction drops them, a seek
// from the start of a range steps over every entry ever deleted there. A
// queue drained from its head would make each claim slower than the last.
// IndexHead remembers instead a low-water key below which nothing live
// remains except a known, in-memory set of "stragglers" (entries inserted
// below the mark after it passed them: a released referral going back to
// its place near the head, an immediate-risk arrival after the queue was
// drained). So the head is the first straggler, or else the first key at or
// after the low-water mark, reached by one seek that steps over no
// tombstones already passed.
//
// Invariant: every live key of the range is a straggler or >= low_water, and
// every straggler is < low_water.
//
// IndexHead is plain data with no locking; the store keeps a committed copy
// under its state mutex and a working copy per group commit. Changes made
// while applying one mutation are recorded in an UndoLog so that a mutation
// that fails part-way leaves the working copy as it found it.
//
// Stragglers can be many (a backlog of raised-band referrals waiting below a
// mark that has moved into the standard band), so a group commit's working
// copy does not copy them: it is an overlay (OverlayOn) holding only the
// stragglers the group added and erased, over the committed head, which
// stays unchanged until the group is durable and is then brought up to date
// in place (Absorb). Cost per group: its own changes, not the backlog.
//
// Stragglers are bounded: the one that would exceed kMaxStragglers lowers
// the mark to the first live key instead (the smallest straggler or the new
// key), and the stragglers become ordinary keys at or after it. The next
// seek then steps over the tombstones between the new and the old mark once
// more, which costs less than holding an unbounded backlog in memory and
// merging it in every group.
#ifndef REFERRAL_STORAGE_SRC_INDEX_HEAD_H_
#define REFERRAL_STORAGE_SRC_INDEX_HEAD_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"

namespace referral::storage {

// Reverts in-memory changes in reverse order, like a write batch save point.
class UndoLog {
 public:
  using Mark = size_t;

  Mark mark() const { return steps_.size(); }
  void Record(absl::AnyInvocable<void() &&> undo) {
    steps_.push_back(std::move(undo));
  }
  // Undoes every change recorded since `mark`, newest first.
  void RollbackTo(Mark mark);
  void Clear() { steps_.clear(); }

 private:
  std::vector<absl::AnyInvocable<void() &&>> steps_;
};

class IndexHead {
 public:
  static constexpr size_t kMaxStragglers = 1024;

  IndexHead() = default;
  // `low_water` is the range's first live key (or the range's start when it
  // is empty); `live` counts its live keys. Set up by the scan at Open.
  IndexHead(std::string low_water, int64_t live);

  // A working copy of `committed` for one group commit; `committed` must not
  // be an overlay itself, and must stay where it is, unchanged, for as long
  // as the overlay is used.
  static IndexHead OverlayOn(const IndexHead& committed);
  // Brings this committed head up to date with an overlay made on it: after
  // this it equals the overlay.
  void Absorb(IndexHead&& overlay);

  const std::string& low_water() const { return low_water_; }
  // Number of live keys below low_water.
  size_t straggler_count() const;
  // Calls `visit(key, value)` for the live keys below low_water in key
  // order, from the first after `*after` (from the first when null), until
  // it returns false.
  void VisitStragglers(
      const std::string* after,
      absl::FunctionRef<bool(const std::string& key, const std::string& value)>
          visit) const;
  // Number of live keys in the range (stragglers included).
  int64_t live() const { return live_; }
  // Live keys at or after low_water.
  int64_t live_from_low_water() const {
    return live_ - static_cast<int64_t>(straggler_count());
  }
  // True when the key at low_water (or the last live key after it) was
  // erased, so the mark should be moved on by Advance before it is used.
  bool needs_advance() const { return needs_advance_; }

  // A key was written to the range. `value` is kept only for stragglers.
  void Insert(const std::string& key, const std::string& value, UndoLog* undo);
  // A live key of the range was deleted.
  void Erase(const std::string& key, UndoLog* undo);
  // Moves the mark after a seek from low_water: to `first_live` (the first
  // live key at or after it) or, when none is live there, past the largest
  // key ever erased here, so no later seek steps over those tombstones.
  void Advance(const std::optional<std::string>& first_live, UndoLog* undo);
  // Every live key below `bound` other than stragglers is known to be gone
  // (the reaper expired them all): raises low_water to `bound`.
  void RaiseTo(const std::string& bound, UndoLog* undo);

 private:
  void SetLowWater(std::string low_water, UndoLog* undo);
  // Lowers the mark to the first live key, `key` or the first straggler,
  // and forgets every straggler (see kMaxStragglers).
  void LowerMarkBelowStragglers(const std::string& key, UndoLog* undo);
  // Whether base_'s stragglers still count here.
  bool UsesBase() const { return base_ != nullptr && !base_dropped_; }
  void SetNeedsAdvance(bool value, UndoLog* undo);

  std::string low_water_;
  // The largest key erased since Open ("" when none): everything in
  // [low_water, max_erased] is dead once nothing live follows low_water.
  std::string max_erased_;
  // A committed head's (or a fresh one's) stragglers with their values; in
  // an overlay, the stragglers it added.
  std::map<std::string, std::string> stragglers_;
  // An overlay's committed head (not owned); null for every other head.
  const IndexHead* base_ = nullptr;
  // Stragglers of base_ the overlay erased.
  std::set<std::string> erased_from_base_;
  // The overlay lowered the mark below every straggler of base_, which are
  // ordinary keys here.
  bool base_dropped_ = false;
  int64_t live_ = 0;
  bool needs_advance_ = false;
};

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_SRC_INDEX_HEAD_H_
