// The diagnostics of referral_store_internal.h.
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "key_codec.h"
#include "record_util.h"
#include "referral_store_impl.h"
#include "referral_store_internal.h"
#include "rocksdb/perf_context.h"
#include "rocksdb/perf_level.h"

namespace referral::storage::internal {
namespace {

class SnapshotPin final : public PinnedState {
 public:
  explicit SnapshotPin(std::shared_ptr<const rocksdb::Snapshot> snapshot)
      : snapshot_(std::move(snapshot)) {}

 private:
  std::shared_ptr<const rocksdb::Snapshot> snapshot_;
};

}  // namespace

SeekCost LastClaimSeekCost(ReferralStore& store) {
  const StoreCore& core = ReferralStoreImpl::Of(store).core();
  return SeekCost{core.last_claim_keys_skipped.load(),
                  core.last_claim_tombstones_skipped.load()};
}

absl::StatusOr<SeekCost> NaiveHeadSeekCost(ReferralStore& store,
                                           std::string_view queue) {
  const StoreCore& core = ReferralStoreImpl::Of(store).core();
  const std::string prefix = keys::NamePrefix(queue);
  const std::string end = keys::NamePrefixEnd(queue);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions read;
  read.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(
      core.db->NewIterator(read, core.cf(kReady)));
  const rocksdb::PerfLevel previous = rocksdb::GetPerfLevel();
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::get_perf_context()->Reset();
  it->Seek(prefix);
  SeekCost cost{rocksdb::get_perf_context()->internal_key_skipped_count,
                rocksdb::get_perf_context()->internal_delete_skipped_count};
  rocksdb::SetPerfLevel(previous);
  if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  return cost;
}

std::unique_ptr<PinnedState> PinCurrentState(ReferralStore& store) {
  return std::make_unique<SnapshotPin>(
      ReferralStoreImpl::Of(store).NewSnapshot());
}

}  // namespace referral::storage::internal
