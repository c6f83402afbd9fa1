// Diagnostic hooks into the store's RocksDB implementation, for the tests
// that show claims stay bounded. Private to storage/ and its tests. (Faults
// are injected below the store, through StoreOptions::file_system.)
#ifndef REFERRAL_STORAGE_SRC_REFERRAL_STORE_INTERNAL_H_
#define REFERRAL_STORAGE_SRC_REFERRAL_STORE_INTERNAL_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "storage/referral_store.h"

namespace referral::storage::internal {

// What one seek-and-scan cost inside RocksDB, from its PerfContext. RocksDB
// counts one internal key per Next() (the entry it moves off), so reading N
// live entries costs N; anything above that is older versions, the puts
// that tombstones hide, and the tombstones themselves.
struct SeekCost {
  uint64_t internal_keys_skipped = 0;
  uint64_t tombstones_skipped = 0;
  uint64_t total() const { return internal_keys_skipped + tombstones_skipped; }
};

// The cost of the ready-index scan made by the most recent Claim; zero when
// it needed no seek (served from in-memory stragglers, or an empty queue).
// `store` must come from ReferralStore::Open.
SeekCost LastClaimSeekCost(ReferralStore& store);

// The cost a naive design would pay: a seek from the very start of the
// queue's ready range (ignoring the low-water mark) to its first live entry,
// against the current state.
absl::StatusOr<SeekCost> NaiveHeadSeekCost(ReferralStore& store,
                                           std::string_view queue);

// Holds a RocksDB snapshot of the current state, as a long-running reader or
// a backup would. While it lives, compaction must keep every tombstone
// written after it, so tests can show that claims still never step over them.
class PinnedState {
 public:
  virtual ~PinnedState() = default;
};
std::unique_ptr<PinnedState> PinCurrentState(ReferralStore& store);

}  // namespace referral::storage::internal

#endif  // REFERRAL_STORAGE_SRC_REFERRAL_STORE_INTERNAL_H_
