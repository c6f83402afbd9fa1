// Specifies that the cost of a claim does not grow with the number of
// referrals already claimed from the queue.
//
// RocksDB deletes by writing tombstones; a seek from the start of a drained
// queue steps over every one of them until compaction drops them. The store
// instead seeks from a low-water mark past the claimed head. Cost is
// measured deterministically, as the internal keys and tombstones RocksDB
// stepped over (its PerfContext counters), never as wall time. A pinned
// snapshot (as a long-running reader or backup would hold) keeps compaction
// from dropping the tombstones, so the naive seek's cost is there to compare
// against, and the test fails if the design regresses to it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "referral_store_internal.h"
#include "storage/referral_store.h"
#include "storage/store_test_util.h"

namespace referral::storage::testing {
namespace {

template <typename T>
T Median(std::vector<T> values) {
  if (values.empty()) return T();
  std::nth_element(values.begin(), values.begin() + values.size() / 2,
                   values.end());
  return values[values.size() / 2];
}

class QueueDepthTest : public StoreTest {
 protected:
  void SetUp() override { Open(); }

  // A minimal referral; due times spread over a day so that delivery order
  // differs from arrival order.
  SubmitCommand SmallSubmit(int i) {
    SubmitCommand command;
    command.agency_id = "test-school";
    command.idempotency_key = "k" + std::to_string(i);
    command.referral.set_description("x");
    command.received_at = clock_.Now();
    command.placement.queue = kQueue;
    command.placement.band = ::referral::v1::PRIORITY_BAND_STANDARD;
    command.placement.due_at =
        clock_.Now() + absl::Hours(24) +
        absl::Seconds((static_cast<int64_t>(i) * 7919) % 86400);
    command.actor = "agency:test-school";
    return command;
  }

  // Submits asynchronously in large batches so group commit shares syncs.
  void Enqueue(int count) {
    constexpr int kBatch = 4096;
    for (int start = 0; start < count; start += kBatch) {
      const int n = std::min(kBatch, count - start);
      std::vector<SubmitCommand> batch;
      for (int i = 0; i < n; ++i) batch.push_back(SmallSubmit(submitted_++));
      for (const auto& result : SubmitAtOnce(std::move(batch))) {
        EXPECT_TRUE(result.ok()) << result.status();
      }
    }
  }

  void DecideAll(const std::vector<StoredReferral>& claimed) {
    absl::BlockingCounter finished(static_cast<int>(claimed.size()));
    for (const StoredReferral& record : claimed) {
      store_->Commit(
          MakeDecide(record, ::referral::v1::DECISION_NO_FURTHER_ACTION),
          [&finished](absl::StatusOr<absl::Time> decided) {
            EXPECT_TRUE(decided.ok()) << decided.status();
            finished.DecrementCount();
          });
    }
    finished.Wait();
  }

  internal::SeekCost Naive() {
    auto cost = internal::NaiveHeadSeekCost(*store_, kQueue);
    EXPECT_TRUE(cost.ok()) << cost.status();
    return cost.ok() ? *cost : internal::SeekCost();
  }

  int submitted_ = 0;
};

TEST_F(QueueDepthTest, ClaimCostDoesNotGrowWhileDrainingADeepQueue) {
  constexpr int kReferrals = 200'000;
  constexpr int kClaimMax = 100;
  constexpr int kSample = 25;  // claims measured at each end
  Enqueue(kReferrals);
  ASSERT_EQ(store_->ReadyCount(kQueue), kReferrals);
  const std::unique_ptr<internal::PinnedState> pin =
      internal::PinCurrentState(*store_);

  std::vector<uint64_t> cost;
  std::vector<uint64_t> tombstones;
  std::vector<double> millis;
  internal::SeekCost naive_before_last;
  int drained = 0;
  for (;;) {
    if (store_->ReadyCount(kQueue) == kClaimMax) naive_before_last = Naive();
    const auto started = std::chrono::steady_clock::now();
    const std::vector<StoredReferral> claimed = Claim(kClaimMax);
    const auto elapsed = std::chrono::steady_clock::now() - started;
    if (claimed.empty()) break;
    ASSERT_EQ(claimed.size(), static_cast<size_t>(kClaimMax));
    cost.push_back(internal::LastClaimSeekCost(*store_).total());
    tombstones.push_back(
        internal::LastClaimSeekCost(*store_).tombstones_skipped);
    millis.push_back(
        std::chrono::duration<double, std::milli>(elapsed).count());
    drained += static_cast<int>(claimed.size());
    DecideAll(claimed);
  }
  ASSERT_EQ(drained, kReferrals);
  ASSERT_GE(cost.size(), 2u * kSample);
  EXPECT_EQ(store_->ReadyCount(kQueue), 0);

  const uint64_t start_cost =
      Median(std::vector<uint64_t>(cost.begin(), cost.begin() + kSample));
  const uint64_t end_cost =
      Median(std::vector<uint64_t>(cost.end() - kSample, cost.end()));
  const uint64_t worst_cost = *std::max_element(cost.begin(), cost.end());
  uint64_t total_tombstones = 0;
  for (uint64_t t : tombstones) total_tombstones += t;
  std::printf(
      "[ depth    ] %d referrals drained by %zu claims of %d\n"
      "[ depth    ] entries stepped over per claim (1 per entry read): "
      "start %llu, end %llu, worst %llu; tombstones stepped over in all "
      "claims: %llu\n"
      "[ depth    ] naive seek from the queue start before the last claim: "
      "%llu tombstones + %llu hidden entries\n"
      "[ depth    ] median wall time per claim: start %.3f ms, end %.3f ms\n",
      drained, cost.size(), kClaimMax,
      static_cast<unsigned long long>(start_cost),
      static_cast<unsigned long long>(end_cost),
      static_cast<unsigned long long>(worst_cost),
      static_cast<unsigned long long>(total_tombstones),
      static_cast<unsigned long long>(naive_before_last.tombstones_skipped),
      static_cast<unsigned long long>(naive_before_last.internal_keys_skipped),
      Median(std::vector<double>(millis.begin(), millis.begin() + kSample)),
      Median(std::vector<double>(millis.end() - kSample, millis.end())));

  // The claim at the end costs what the claim at the start did.
  EXPECT_LE(end_cost, 2 * start_cost + 16);
  EXPECT_LE(worst_cost, 2 * start_cost + 16);
  // ...where a seek from the start of the queue would step over every
  // tombstone the drain left (so this test does catch a regression).
  EXPECT_GE(naive_before_last.tombstones_skipped,
            static_cast<uint64_t>(kReferrals - kClaimMax) * 9 / 10);
}

TEST_F(QueueDepthTest, ReleasedAndUrgentReferralsDoNotReopenTheDrainedHead) {
  constexpr int kReferrals = 20'000;
  Enqueue(kReferrals);
  const std::unique_ptr<internal::PinnedState> pin =
      internal::PinCurrentState(*store_);
  // Claim the first one and keep it; drain all but the last few.
  const std::vector<StoredReferral> kept = Claim(1);
  ASSERT_EQ(kept.size(), 1u);
  while (store_->ReadyCount(kQueue) > 10) {
    DecideAll(Claim(std::min<int64_t>(500, *store_->ReadyCount(kQueue) - 10)));
  }
  ASSERT_GE(Naive().tombstones_skipped,
            static_cast<uint64_t>(kReferrals - 20) * 9 / 10);

  // The first referral goes back to its place, at the very start of the
  // drained range: it is claimed straight from memory, with no seek...
  auto released = CommitNow(
      *store_, ReleaseCommand{kept[0].referral_id(), kept[0].lease().token(),
                              "handover", "triage:worker-1"});
  ASSERT_TRUE(released.ok()) << released.status();
  SubmitCommand urgent = SmallSubmit(kReferrals + 1);
  urgent.idempotency_key = "urgent";
  urgent.placement.band = ::referral::v1::PRIORITY_BAND_IMMEDIATE_RISK;
  auto submitted = CommitNow(*store_, urgent);
  ASSERT_TRUE(submitted.ok()) << submitted.status();

  const std::vector<StoredReferral> next = Claim(2);
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0].referral_id(), submitted->record.referral_id());
  EXPECT_EQ(next[1].referral_id(), kept[0].referral_id());
  EXPECT_EQ(internal::LastClaimSeekCost(*store_).total(), 0u);
  // ...and the rest are reached by one bounded seek past the tombstones:
  // one step per entry read, none over a tombstone.
  const std::vector<StoredReferral> rest = Claim(100);
  EXPECT_EQ(rest.size(), 10u);
  EXPECT_EQ(internal::LastClaimSeekCost(*store_).tombstones_skipped, 0u);
  EXPECT_LE(internal::LastClaimSeekCost(*store_).total(), 10u + 4);
}

}  // namespace
}  // namespace referral::storage::testing
