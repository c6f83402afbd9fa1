#include "index_head.h"

#include <optional>
#include <string>
#include <utility>

#include "key_codec.h"

namespace referral::storage {

void UndoLog::RollbackTo(Mark mark) {
  while (steps_.size() > mark) {
    std::move(steps_.back())();
    steps_.pop_back();
  }
}

IndexHead::IndexHead(std::string low_water, int64_t live)
    : low_water_(std::move(low_water)), live_(live) {}

IndexHead IndexHead::OverlayOn(const IndexHead& committed) {
  IndexHead overlay;
  overlay.low_water_ = committed.low_water_;
  overlay.max_erased_ = committed.max_erased_;
  overlay.live_ = committed.live_;
  overlay.needs_advance_ = committed.needs_advance_;
  overlay.base_ = &committed;
  return overlay;
}

void IndexHead::Absorb(IndexHead&& overlay) {
  if (overlay.base_dropped_) stragglers_.clear();
  for (const std::string& key : overlay.erased_from_base_) {
    stragglers_.erase(key);
  }
  for (auto& [key, value] : overlay.stragglers_) {
    stragglers_.insert_or_assign(key, std::move(value));
  }
  low_water_ = std::move(overlay.low_water_);
  max_erased_ = std::move(overlay.max_erased_);
  live_ = overlay.live_;
  needs_advance_ = overlay.needs_advance_;
}

size_t IndexHead::straggler_count() const {
  if (!UsesBase()) return stragglers_.size();
  return base_->stragglers_.size() - erased_from_base_.size() +
         stragglers_.size();
}

void IndexHead::VisitStragglers(
    const std::string* after,
    absl::FunctionRef<bool(const std::string& key, const std::string& value)>
        visit) const {
  using Map = std::map<std::string, std::string>;
  auto start = [after](const Map& map) {
    return after != nullptr ? map.upper_bound(*after) : map.begin();
  };
  Map::const_iterator own = start(stragglers_);
  if (!UsesBase()) {
    for (; own != stragglers_.end(); ++own) {
      if (!visit(own->first, own->second)) return;
    }
    return;
  }
  // Merge the committed stragglers still live here with the added ones.
  const Map& committed = base_->stragglers_;
  Map::const_iterator base = start(committed);
  for (;;) {
    while (base != committed.end() && erased_from_base_.contains(base->first)) {
      ++base;
    }
    const bool base_left = base != committed.end();
    const bool own_left = own != stragglers_.end();
    if (!base_left && !own_left) return;
    // A key erased from the base and added again is the added one's.
    if (base_left && (!own_left || base->first < own->first)) {
      if (!visit(base->first, base->second)) return;
      ++base;
    } else {
      if (!visit(own->first, own->second)) return;
      ++own;
    }
  }
}

void IndexHead::Insert(const std::string& key, const std::string& value,
                       UndoLog* undo) {
  if (key < low_water_ && straggler_count() >= kMaxStragglers) {
    LowerMarkBelowStragglers(key, undo);
  } else if (key < low_water_) {
    // Below the mark: remember it exactly rather than lowering the mark,
    // which would make the next seek cross every tombstone in between.
    stragglers_.insert_or_assign(key, value);
    undo->Record([this, key] { stragglers_.erase(key); });
  } else if (live_from_low_water() == 0) {
    // Nothing live at or after the mark: the new key is the head.
    SetLowWater(key, undo);
  }
  ++live_;
  undo->Record([this] { --live_; });
}

void IndexHead::Erase(const std::string& key, UndoLog* undo) {
  auto straggler = stragglers_.find(key);
  if (straggler != stragglers_.end()) {
    undo->Record(
        [this, entry = *straggler] { stragglers_.insert(std::move(entry)); });
    stragglers_.erase(straggler);
  } else if (UsesBase() && base_->stragglers_.contains(key) &&
             erased_from_base_.insert(key).second) {
    undo->Record([this, key] { erased_from_base_.erase(key); });
  } else {
    if (key > max_erased_) {
      undo->Record([this, old = max_erased_] { max_erased_ = old; });
      max_erased_ = key;
    }
    // The head may have gone: move the mark on before the next seek, so the
    // tombstone just written is stepped over once, here, and never again.
    SetNeedsAdvance(true, undo);
  }
  --live_;
  undo->Record([this] { ++live_; });
}

void IndexHead::Advance(const std::optional<std::string>& first_live,
                        UndoLog* undo) {
  if (first_live.has_value()) {
    if (*first_live > low_water_) SetLowWater(*first_live, undo);
  } else if (!max_erased_.empty()) {
    std::string past_erased = keys::Successor(max_erased_);
    if (past_erased > low_water_) SetLowWater(std::move(past_erased), undo);
  }
  SetNeedsAdvance(false, undo);
}

void IndexHead::RaiseTo(const std::string& bound, UndoLog* undo) {
  // Stragglers are below the old mark, so they stay below the new one.
  if (bound > low_water_) SetLowWater(bound, undo);
}

void IndexHead::SetLowWater(std::string low_water, UndoLog* undo) {
  undo->Record([this, old = low_water_] { low_water_ = old; });
  low_water_ = std::move(low_water);
}

void IndexHead::LowerMarkBelowStragglers(const std::string& key,
                                         UndoLog* undo) {
  std::string first_live = key;
  VisitStragglers(nullptr, [&](const std::string& first, const std::string&) {
    if (first < first_live) first_live = first;
    return false;
  });
  // Every other live key is a straggler (so at or after the first) or at or
  // after the old mark: the new mark is the range's first live key.
  undo->Record([this, stragglers = std::move(stragglers_),
                erased = std::move(erased_from_base_),
                dropped = base_dropped_]() mutable {
    stragglers_ = std::move(stragglers);
    erased_from_base_ = std::move(erased);
    base_dropped_ = dropped;
  });
  stragglers_.clear();
  erased_from_base_.clear();
  base_dropped_ = base_ != nullptr;
  SetLowWater(std::move(first_live), undo);
}

void IndexHead::SetNeedsAdvance(bool value, UndoLog* undo) {
  if (needs_advance_ == value) return;
  undo->Record([this, old = needs_advance_] { needs_advance_ = old; });
  needs_advance_ = value;
}

}  // namespace referral::storage
