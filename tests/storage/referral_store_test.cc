// Specifies the durable referral store: delivery order, leases and their
// expiry, dead letters, idempotency, decisions and outcomes, repeated-concern
// linking, counts, queue events, durability across reopening, concurrency,
// and that a failed commit changes nothing.
#include "storage/referral_store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index_head.h"
#include "referral_store_internal.h"
#include "storage/store_test_util.h"

namespace referral::storage::testing {
namespace {

using ::referral::v1::Stage;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using Kind = CommittedChange::Kind;

std::vector<Stage> Stages(const StoredReferral& record) {
  std::vector<Stage> stages;
  for (const auto& event : record.history()) stages.push_back(event.stage());
  return stages;
}

class ReferralStoreTest : public StoreTest {
 protected:
  void SetUp() override { Open(); }

  StoreOptions Options() override {
    StoreOptions options = StoreTest::Options();
    options.max_deliveries = 3;
    options.on_committed = [this](const std::vector<CommittedChange>& changes) {
      absl::MutexLock lock(&events_mu_);
      events_.insert(events_.end(), changes.begin(), changes.end());
    };
    options.on_group_committed = [this](const GroupCommitTiming& timing) {
      absl::MutexLock lock(&events_mu_);
      timings_.push_back(timing);
    };
    return options;
  }

  void Reopen() { Open(); }

  std::vector<CommittedChange> TakeEvents() {
    absl::MutexLock lock(&events_mu_);
    return std::exchange(events_, {});
  }

  using StoreTest::Submit;
  // Submits with a due time `due_in` after now; returns the record.
  StoredReferral Submit(const std::string& key, absl::Duration due_in,
                        ::referral::v1::PriorityBand band =
                            ::referral::v1::PRIORITY_BAND_STANDARD) {
    SubmitCommand command = MakeSubmit(key, clock_.Now());
    command.placement.band = band;
    command.placement.due_at = clock_.Now() + due_in;
    auto result = CommitNow(*store_, std::move(command));
    EXPECT_TRUE(result.ok()) << result.status();
    EXPECT_FALSE(result.ok() && result->duplicate);
    return result.ok() ? result->record : StoredReferral();
  }

  absl::StatusOr<::referral::v1::ReferralState> Release(
      const StoredReferral& claimed, const std::string& reason = "handover") {
    return CommitNow(
        *store_, ReleaseCommand{claimed.referral_id(), claimed.lease().token(),
                                reason, "triage:worker-1"});
  }

  StoredReferral Get(const std::string& id) {
    auto record = store_->GetReferral(id);
    EXPECT_TRUE(record.ok()) << record.status();
    return record.ok() ? *record : StoredReferral();
  }

  std::vector<std::string> QueueOrder() {
    return Ids(Page(Listing::kQueue).referrals);
  }

  // The group commits timed so far, once there are at least `count` (the
  // timing is reported after the replies are handed over, so a caller can
  // be answered first).
  std::vector<GroupCommitTiming> AwaitTimings(size_t count) {
    absl::MutexLock lock(&events_mu_);
    auto enough = [this, count]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return timings_.size() >= count;
    };
    events_mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(30));
    return timings_;
  }

  absl::Mutex events_mu_;
  std::vector<CommittedChange> events_ ABSL_GUARDED_BY(events_mu_);
  std::vector<GroupCommitTiming> timings_ ABSL_GUARDED_BY(events_mu_);
};

// --- Submitting and reading. -------------------------------------------------

TEST_F(ReferralStoreTest, SubmitStoresAQueuedReferralWithItsHistory) {
  const absl::Time received = clock_.Now();
  SubmitCommand command = MakeSubmit("key-1", received);
  command.placement.routing_rule = "school-neglect";
  auto result = CommitNow(*store_, command);
  ASSERT_TRUE(result.ok()) << result.status();
  const StoredReferral& record = result->record;

  EXPECT_EQ(record.referral_id(), "REF-2026-000001");
  EXPECT_EQ(record.seq(), 1u);
  EXPECT_EQ(record.state(), ::referral::v1::REFERRAL_STATE_QUEUED);
  EXPECT_EQ(record.queue(), kQueue);
  EXPECT_EQ(record.agency_id(), "test-school");
  EXPECT_EQ(record.fingerprint().size(), 32u);  // SHA-256
  EXPECT_EQ(record.received_at_us(), absl::ToUnixMicros(received));
  EXPECT_EQ(record.queued_at_us(), absl::ToUnixMicros(clock_.Now()));
  EXPECT_EQ(record.routing_rule(), "school-neglect");
  ASSERT_THAT(Stages(record), ElementsAre(::referral::v1::STAGE_RECEIVED,
                                          ::referral::v1::STAGE_ROUTED));
  EXPECT_EQ(record.history(0).actor(), "agency:test-school");
  EXPECT_EQ(record.history(1).queue(), kQueue);
  EXPECT_EQ(record.history(1).detail(), "school-neglect");

  StoredReferral stored = Get("REF-2026-000001");
  EXPECT_EQ(stored.SerializeAsString(), record.SerializeAsString());
  EXPECT_EQ(store_->ReadyCount(kQueue), 1);
}

TEST_F(ReferralStoreTest, EachGroupCommitReportsWhereItsTimeWent) {
  ASSERT_TRUE(CommitNow(*store_, MakeSubmit("key-1", clock_.Now())).ok());
  ASSERT_TRUE(CommitNow(*store_, MakeSubmit("key-2", clock_.Now())).ok());
  // One after the other: two group commits of one submission each.
  const std::vector<GroupCommitTiming> timings = AwaitTimings(2);
  ASSERT_EQ(timings.size(), 2u);
  for (const GroupCommitTiming& timing : timings) {
    EXPECT_EQ(timing.mutations, 1);
    EXPECT_GE(timing.waited, absl::ZeroDuration());
    EXPECT_GT(timing.applied, absl::ZeroDuration());
    EXPECT_GT(timing.synced, absl::ZeroDuration());
  }
}

TEST_F(ReferralStoreTest, ABacklogBeyondTheStragglerLimitIsClaimedInOrder) {
  // The queue's head moves past a standard referral; then more raised ones
  // arrive, all sorting before the head, than are kept as stragglers.
  Submit("standard-0", absl::Hours(30));
  ASSERT_EQ(Claim(1).size(), 1u);
  const int raised = static_cast<int>(IndexHead::kMaxStragglers) + 50;
  std::vector<std::string> expected;
  for (int i = 0; i < raised; ++i) {
    expected.push_back(Submit(absl::StrCat("raised-", i), absl::Hours(8),
                              ::referral::v1::PRIORITY_BAND_RAISED)
                           .referral_id());
  }
  const StoredReferral later = Submit("standard-1", absl::Hours(40));
  expected.push_back(later.referral_id());
  EXPECT_EQ(Counts().ready, raised + 1);
  // The first page of the listing, in the same order.
  const std::vector<std::string> listed = QueueOrder();
  ASSERT_GE(listed.size(), 100u);
  EXPECT_EQ(listed, std::vector<std::string>(expected.begin(),
                                             expected.begin() + listed.size()));

  // Half claimed as the store has them in memory, the rest after a restart
  // has rebuilt its view from the index.
  std::vector<std::string> claimed;
  auto claim_up_to = [&](size_t total) {
    while (claimed.size() < total) {
      std::vector<StoredReferral> batch = Claim(100);
      if (batch.empty()) return;
      for (const StoredReferral& record : batch) {
        claimed.push_back(record.referral_id());
      }
    }
  };
  claim_up_to(expected.size() / 2);
  Reopen();
  claim_up_to(expected.size() + 1);
  EXPECT_EQ(claimed, expected);
  EXPECT_EQ(store_->ReadyCount(kQueue), 0);
}

TEST_F(ReferralStoreTest, ReferenceYearIsTheUtcYearOfReceipt) {
  // 23:30 on 31 Dec 2025 in London is still 2025 in UTC.
  SubmitCommand command = MakeSubmit(
      "new-year", absl::FromCivil(absl::CivilSecond(2025, 12, 31, 23, 30, 0),
                                  absl::UTCTimeZone()));
  auto result = CommitNow(*store_, command);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->record.referral_id(), "REF-2025-000001");
}

TEST_F(ReferralStoreTest, GetReferralRejectsMalformedIdsAndMissesUnknownOnes) {
  Submit("key-1", absl::Hours(1));
  auto malformed = store_->GetReferral("REF-26-1");
  EXPECT_EQ(malformed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(malformed.status().message(),
            "referral_id: not a referral reference");
  EXPECT_EQ(store_->GetReferral("REF-2026-999999").status().code(),
            absl::StatusCode::kNotFound);
  // The right seq under the wrong year, or differently padded, is unknown.
  EXPECT_EQ(store_->GetReferral("REF-2025-000001").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetReferral("REF-2026-0000001").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ReferralStoreTest, SubmitRejectsInvalidPlacement) {
  SubmitCommand bad_queue = MakeSubmit("k", clock_.Now(), "Front Door");
  EXPECT_EQ(CommitNow(*store_, bad_queue).status().code(),
            absl::StatusCode::kInvalidArgument);
  SubmitCommand no_band = MakeSubmit("k", clock_.Now());
  no_band.placement.band = ::referral::v1::PRIORITY_BAND_UNSPECIFIED;
  EXPECT_EQ(CommitNow(*store_, no_band).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ReadyCount("Front Door"), std::nullopt);
  EXPECT_THAT(store_->GetCounts({.now = clock_.Now(), .queues = true}).queues,
              IsEmpty());
}

// --- Delivery order. ---------------------------------------------------------

TEST_F(ReferralStoreTest,
       DeliversImmediateRiskFirstThenEarliestDueThenArrival) {
  const auto standard_late = Submit("a", absl::Hours(72));
  const auto standard_soon = Submit("b", absl::Hours(4));
  const auto immediate = Submit("c", absl::Hours(72),
                                ::referral::v1::PRIORITY_BAND_IMMEDIATE_RISK);
  const auto standard_soon_later_arrival = Submit("d", absl::Hours(4));
  const auto raised =
      Submit("e", absl::Hours(96), ::referral::v1::PRIORITY_BAND_RAISED);
  const std::vector<std::string> expected = {
      immediate.referral_id(), raised.referral_id(),
      standard_soon.referral_id(), standard_soon_later_arrival.referral_id(),
      standard_late.referral_id()};

  EXPECT_EQ(QueueOrder(), expected);
  EXPECT_EQ(Ids(Claim(2)),
            std::vector<std::string>(expected.begin(), expected.begin() + 2));
  EXPECT_EQ(Ids(Claim(10)),
            std::vector<std::string>(expected.begin() + 2, expected.end()));
  EXPECT_THAT(Claim(10), IsEmpty());
}

TEST_F(ReferralStoreTest, ReleasedReferralReturnsToItsPlaceNearTheHead) {
  const auto first = Submit("a", absl::Hours(1));
  const auto second = Submit("b", absl::Hours(2));
  const auto third = Submit("c", absl::Hours(3));
  const auto claimed_first = Claim(1);
  ASSERT_THAT(Ids(claimed_first), ElementsAre(first.referral_id()));
  ASSERT_THAT(Ids(Claim(1)), ElementsAre(second.referral_id()));

  ASSERT_EQ(Release(claimed_first[0], "needs-manager").value(),
            ::referral::v1::REFERRAL_STATE_QUEUED);
  const StoredReferral released = Get(first.referral_id());
  EXPECT_EQ(released.enqueue_generation(), first.enqueue_generation() + 1);
  EXPECT_EQ(released.band(), first.band());
  EXPECT_EQ(released.due_at_us(), first.due_at_us());
  EXPECT_FALSE(released.has_lease());
  EXPECT_EQ(released.failed_deliveries(), 1);
  EXPECT_EQ(released.history().rbegin()->stage(),
            ::referral::v1::STAGE_RELEASED);
  EXPECT_EQ(released.history().rbegin()->detail(), "needs-manager");

  // Ahead of the referral that was never claimed.
  EXPECT_THAT(QueueOrder(),
              ElementsAre(first.referral_id(), third.referral_id()));
  EXPECT_THAT(Ids(Claim(5)),
              ElementsAre(first.referral_id(), third.referral_id()));
}

TEST_F(ReferralStoreTest, ImmediateRiskArrivingAfterTheQueueDrainedIsNext) {
  Submit("a", absl::Hours(1));
  Submit("b", absl::Hours(2));
  ASSERT_EQ(Claim(5).size(), 2u);
  const auto standard = Submit("c", absl::Hours(5));
  const auto immediate =
      Submit("d", absl::Hours(9), ::referral::v1::PRIORITY_BAND_IMMEDIATE_RISK);
  EXPECT_THAT(Ids(Claim(5)),
              ElementsAre(immediate.referral_id(), standard.referral_id()));
}

// --- Leases.
// -------------------------------------------------------------------

TEST_F(ReferralStoreTest, ClaimLeasesTheReferralToTheWorker) {
  const auto submitted = Submit("a", absl::Hours(1));
  const absl::Time now = clock_.Now();
  const auto claimed = Claim(1, absl::Minutes(20), "worker-7");
  ASSERT_EQ(claimed.size(), 1u);
  const StoredReferral& record = claimed[0];
  EXPECT_EQ(record.state(), ::referral::v1::REFERRAL_STATE_CLAIMED);
  EXPECT_EQ(record.lease().token().size(), 32u);
  EXPECT_EQ(record.lease().token().find_first_not_of("0123456789abcdef"),
            std::string::npos);
  EXPECT_EQ(record.lease().worker(), "worker-7");
  EXPECT_EQ(record.lease().claimed_at_us(), absl::ToUnixMicros(now));
  EXPECT_EQ(record.lease().expires_at_us(),
            absl::ToUnixMicros(now + absl::Minutes(20)));
  EXPECT_EQ(record.delivery_attempts(), 1);
  EXPECT_EQ(record.first_claimed_at_us(), absl::ToUnixMicros(now));
  const auto& claim_entry = *record.history().rbegin();
  EXPECT_EQ(claim_entry.stage(), ::referral::v1::STAGE_CLAIMED);
  EXPECT_EQ(claim_entry.actor(), "triage:worker-7");
  EXPECT_EQ(claim_entry.delivery_attempt(), 1);
  EXPECT_EQ(Get(submitted.referral_id()).SerializeAsString(),
            record.SerializeAsString());

  const QueueCounts counts = Counts();
  EXPECT_EQ(counts.ready, 0);
  EXPECT_EQ(counts.claimed, 1);
  EXPECT_FALSE(counts.oldest_ready_received_at.has_value());
}

TEST_F(ReferralStoreTest, ClaimFromAnEmptyOrUnknownQueueReturnsNothing) {
  EXPECT_THAT(Claim(3), IsEmpty());
  ClaimCommand bad;
  bad.queue = "no such queue";
  EXPECT_EQ(CommitNow(*store_, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ReferralStoreTest, ExtendMovesTheLeaseExpiry) {
  Submit("a", absl::Hours(1));
  const auto claimed = Claim(1, absl::Minutes(10));
  ASSERT_EQ(claimed.size(), 1u);
  clock_.Advance(absl::Minutes(8));
  auto expires =
      CommitNow(*store_, ExtendCommand{claimed[0].referral_id(),
                                       claimed[0].lease().token(),
                                       absl::Minutes(10), "triage:worker-1"});
  ASSERT_TRUE(expires.ok()) << expires.status();
  EXPECT_EQ(*expires, clock_.Now() + absl::Minutes(10));
  const StoredReferral record = Get(claimed[0].referral_id());
  EXPECT_EQ(record.lease().expires_at_us(), absl::ToUnixMicros(*expires));
  EXPECT_EQ(record.lease().token(), claimed[0].lease().token());
  EXPECT_EQ(record.history().rbegin()->stage(),
            ::referral::v1::STAGE_CLAIM_EXTENDED);

  // Past the first expiry, not the extended one: still claimed.
  clock_.Advance(absl::Minutes(5));
  EXPECT_EQ(CommitNow(*store_, ExpireLeasesCommand{}).value(), 0);
  clock_.Advance(absl::Minutes(6));
  EXPECT_EQ(CommitNow(*store_, ExpireLeasesCommand{}).value(), 1);
}

TEST_F(ReferralStoreTest, WrongOrStaleLeaseTokenIsRejectedAndChangesNothing) {
  Submit("a", absl::Hours(1));
  const auto claimed = Claim(1, absl::Minutes(10));
  ASSERT_EQ(claimed.size(), 1u);
  const std::string id = claimed[0].referral_id();
  const std::string before = Get(id).SerializeAsString();
  TakeEvents();

  const std::string wrong(32, 'a');
  auto extend = CommitNow(
      *store_, ExtendCommand{id, wrong, absl::Minutes(5), "triage:worker-1"});
  EXPECT_EQ(extend.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(extend.status().message(), HasSubstr("lease token"));
  auto release =
      CommitNow(*store_, ReleaseCommand{id, wrong, "", "triage:worker-1"});
  EXPECT_EQ(release.status().code(), absl::StatusCode::kFailedPrecondition);
  StoredReferral forged = claimed[0];
  forged.mutable_lease()->set_token(wrong);
  EXPECT_EQ(Decide(forged).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Get(id).SerializeAsString(), before);
  EXPECT_THAT(TakeEvents(), IsEmpty());

  // After the lease expired and another worker claimed it, the first
  // worker's token is stale.
  clock_.Advance(absl::Minutes(11));
  ASSERT_EQ(CommitNow(*store_, ExpireLeasesCommand{}).value(), 1);
  auto stale = Decide(claimed[0]);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(stale.status().message(), HasSubstr("not claimed"));
  const auto reclaimed = Claim(1, absl::Minutes(10), "worker-2");
  ASSERT_EQ(reclaimed.size(), 1u);
  EXPECT_NE(reclaimed[0].lease().token(), claimed[0].lease().token());
  stale = Decide(claimed[0]);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(stale.status().message(), HasSubstr("stale or wrong"));
  EXPECT_TRUE(Decide(reclaimed[0]).ok());
}

TEST_F(ReferralStoreTest, ExpiredLeaseReturnsTheReferralToItsQueue) {
  const auto submitted = Submit("a", absl::Hours(1));
  ASSERT_EQ(Claim(1, absl::Minutes(1)).size(), 1u);
  EXPECT_EQ(CommitNow(*store_, ExpireLeasesCommand{}).value(), 0);  // not yet
  TakeEvents();
  clock_.Advance(absl::Minutes(1));  // expires_at <= now: expired
  EXPECT_EQ(CommitNow(*store_, ExpireLeasesCommand{}).value(), 1);

  const StoredReferral record = Get(submitted.referral_id());
  EXPECT_EQ(record.state(), ::referral::v1::REFERRAL_STATE_QUEUED);
  EXPECT_EQ(record.failed_deliveries(), 1);
  EXPECT_FALSE(record.has_lease());
  const auto& expiry = *record.history().rbegin();
  EXPECT_EQ(expiry.stage(), ::referral::v1::STAGE_LEASE_EXPIRED);
  EXPECT_EQ(expiry.actor(), "broker");
  EXPECT_EQ(expiry.delivery_attempt(), 1);
  const auto events = TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kLeaseExpired);
  EXPECT_EQ(Counts().ready, 1);
  EXPECT_EQ(Counts().claimed, 0);

  const auto again = Claim(1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].delivery_attempts(), 2);
}

TEST_F(ReferralStoreTest, ReaperThreadExpiresLeasesOnItsOwn) {
  Submit("a", absl::Hours(1));
  ASSERT_EQ(Claim(1, absl::Minutes(1)).size(), 1u);
  clock_.Advance(absl::Minutes(2));
  StoreOptions options = Options();
  options.lease_check_interval = absl::Milliseconds(5);
  Open(options);
  // Waits for the background pass; bounded so a broken reaper fails.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (store_->ReadyCount(kQueue) == 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(store_->ReadyCount(kQueue), 1);
}

// --- Dead letters.
// -------------------------------------------------------------

TEST_F(ReferralStoreTest, DeadLettersAfterMaxDeliveriesByRelease) {
  const auto submitted = Submit("a", absl::Hours(1));
  for (int attempt = 1; attempt <= 2; ++attempt) {
    const auto claimed = Claim(1);
    ASSERT_EQ(claimed.size(), 1u);
    EXPECT_EQ(Release(claimed[0]).value(),
              ::referral::v1::REFERRAL_STATE_QUEUED);
  }
  const auto last = Claim(1);
  ASSERT_EQ(last.size(), 1u);
  TakeEvents();
  EXPECT_EQ(Release(last[0]).value(),
            ::referral::v1::REFERRAL_STATE_DEAD_LETTERED);

  const StoredReferral record = Get(submitted.referral_id());
  EXPECT_EQ(record.state(), ::referral::v1::REFERRAL_STATE_DEAD_LETTERED);
  EXPECT_EQ(record.failed_deliveries(), 3);
  EXPECT_EQ(record.dead_lettered_at_us(), absl::ToUnixMicros(clock_.Now()));
  const int n = record.history_size();
  EXPECT_EQ(record.history(n - 2).stage(), ::referral::v1::STAGE_RELEASED);
  EXPECT_EQ(record.history(n - 1).stage(), ::referral::v1::STAGE_DEAD_LETTERED);
  // The release happened, then the dead-lettering: both are told.
  const auto events = TakeEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kReleased);
  EXPECT_EQ(events[1].kind, Kind::kDeadLettered);

  auto dead = store_->List(Listing::kDeadLetters, kQueue, 10, "");
  ASSERT_TRUE(dead.ok());
  EXPECT_THAT(Ids(dead->referrals), ElementsAre(submitted.referral_id()));
  const QueueCounts counts = Counts();
  EXPECT_EQ(counts.ready, 0);
  EXPECT_EQ(counts.claimed, 0);
  EXPECT_EQ(counts.dead_letters, 1);
  EXPECT_THAT(Claim(1), IsEmpty());
}

TEST_F(ReferralStoreTest, DeadLettersAfterMaxDeliveriesByLeaseExpiry) {
  const auto submitted = Submit("a", absl::Hours(1));
  std::vector<CommittedChange> last_expiry;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_EQ(Claim(1, absl::Minutes(1)).size(), 1u);
    clock_.Advance(absl::Minutes(2));
    TakeEvents();
    ASSERT_EQ(CommitNow(*store_, ExpireLeasesCommand{}).value(), 1);
    last_expiry = TakeEvents();
  }
  const StoredReferral record = Get(submitted.referral_id());
  EXPECT_EQ(record.state(), ::referral::v1::REFERRAL_STATE_DEAD_LETTERED);
  const int n = record.history_size();
  EXPECT_EQ(record.history(n - 2).stage(), ::referral::v1::STAGE_LEASE_EXPIRED);
  EXPECT_EQ(record.history(n - 1).stage(), ::referral::v1::STAGE_DEAD_LETTERED);
  EXPECT_EQ(Counts().dead_letters, 1);
  // Every expiry is told, the last one too (the lease-expiry metric counts
  // these events), followed by the dead-lettering.
  ASSERT_EQ(last_expiry.size(), 2u);
  EXPECT_EQ(last_expiry[0].kind, Kind::kLeaseExpired);
  EXPECT_EQ(last_expiry[1].kind, Kind::kDeadLettered);
}

TEST_F(ReferralStoreTest, RequeuedDeadLetterGoesBackToItsQueue) {
  const auto submitted = Submit("a", absl::Hours(1));
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const auto claimed = Claim(1);
    ASSERT_EQ(claimed.size(), 1u);
    ASSERT_TRUE(Release(claimed[0]).ok());
  }
  TakeEvents();
  auto queue = CommitNow(
      *store_, RequeueCommand{submitted.referral_id(), "ops:duty-manager"});
  ASSERT_TRUE(queue.ok()) << queue.status();
  EXPECT_EQ(*queue, kQueue);

  const StoredReferral record = Get(submitted.referral_id());
  EXPECT_EQ(record.state(), ::referral::v1::REFERRAL_STATE_QUEUED);
  EXPECT_EQ(record.failed_deliveries(), 0);
  EXPECT_EQ(record.history().rbegin()->stage(), ::referral::v1::STAGE_REQUEUED);
  EXPECT_EQ(record.history().rbegin()->actor(), "ops:duty-manager");
  const auto events = TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kRequeued);
  EXPECT_EQ(Counts().dead_letters, 0);
  EXPECT_EQ(Counts().ready, 1);
  EXPECT_THAT(store_->List(Listing::kDeadLetters, kQueue, 10, "")->referrals,
              IsEmpty());

  // It can fail its deliveries again (new keys, nothing written twice).
  EXPECT_THAT(Ids(Claim(1)), ElementsAre(submitted.referral_id()));
  auto again = CommitNow(
      *store_, RequeueCommand{submitted.referral_id(), "ops:duty-manager"});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
}

// --- Idempotency.
// --------------------------------------------------------------

TEST_F(ReferralStoreTest, RepeatedSubmitReturnsTheOriginalAndStoresNothing) {
  const auto original = Submit("incident-42", absl::Hours(1));
  TakeEvents();
  clock_.Advance(absl::Minutes(5));
  auto repeat = CommitNow(*store_, MakeSubmit("incident-42", clock_.Now()));
  ASSERT_TRUE(repeat.ok()) << repeat.status();
  EXPECT_TRUE(repeat->duplicate);
  EXPECT_EQ(repeat->record.SerializeAsString(), original.SerializeAsString());
  EXPECT_EQ(store_->ReadyCount(kQueue), 1);
  EXPECT_THAT(TakeEvents(), IsEmpty());
  // The next new referral takes the next seq: nothing was allocated.
  EXPECT_EQ(Submit("incident-43", absl::Hours(1)).seq(), 2u);
}

TEST_F(ReferralStoreTest, ReusedKeyWithDifferentContentIsAlreadyExists) {
  Submit("incident-42", absl::Hours(1));
  SubmitCommand changed = MakeSubmit("incident-42", clock_.Now());
  changed.referral = MakeReferral("A different and private description.");
  auto result = CommitNow(*store_, changed);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(result.status().message(), HasSubstr("idempotency_key"));
  EXPECT_THAT(std::string(result.status().message()),
              Not(HasSubstr("private")));
  EXPECT_EQ(store_->ReadyCount(kQueue), 1);
}

TEST_F(ReferralStoreTest, IdempotencyKeysAreScopedToTheAgency) {
  Submit("shared-key", absl::Hours(1));
  SubmitCommand other = MakeSubmit("shared-key", clock_.Now());
  other.agency_id = "cambs-police";
  auto result = CommitNow(*store_, other);
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->duplicate);
  EXPECT_EQ(store_->ReadyCount(kQueue), 2);
}

TEST_F(ReferralStoreTest, DuplicatesInOneGroupCommitAreStillDetected) {
  // Enqueued back to back, these usually share one group commit; either
  // way exactly one referral is stored.
  constexpr int kCopies = 20;
  std::vector<SubmitCommand> copies(kCopies, MakeSubmit("same", clock_.Now()));
  std::vector<SubmitResult> results;
  for (auto& result : SubmitAtOnce(std::move(copies))) {
    ASSERT_TRUE(result.ok()) << result.status();
    results.push_back(*std::move(result));
  }
  int originals = 0;
  for (const SubmitResult& result : results) {
    if (!result.duplicate) ++originals;
    EXPECT_EQ(result.record.referral_id(), "REF-2026-000001");
  }
  EXPECT_EQ(originals, 1);
  EXPECT_EQ(store_->ReadyCount(kQueue), 1);
}

// --- Decisions and outcomes.
// ---------------------------------------------------

TEST_F(ReferralStoreTest, DecisionIsRecordedAndOutcomeAwaitsAcknowledgement) {
  const auto submitted = Submit("a", absl::Hours(1));
  const auto claimed = Claim(1);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(
      Decide(claimed[0], ::referral::v1::DECISION_UNSPECIFIED).status().code(),
      absl::StatusCode::kInvalidArgument);
  clock_.Advance(absl::Minutes(3));
  auto decided_at = Decide(claimed[0]);
  ASSERT_TRUE(decided_at.ok()) << decided_at.status();
  EXPECT_EQ(*decided_at, clock_.Now());

  const StoredReferral record = Get(submitted.referral_id());
  EXPECT_EQ(record.state(), ::referral::v1::REFERRAL_STATE_DECIDED);
  EXPECT_EQ(record.decision().decision(), ::referral::v1::DECISION_EARLY_HELP);
  EXPECT_EQ(record.decision().feedback(), "Referred to early help.");
  EXPECT_EQ(record.decision().decided_by(), "triage:worker-1");
  EXPECT_EQ(record.decision().decided_at_us(), absl::ToUnixMicros(*decided_at));
  EXPECT_FALSE(record.has_lease());
  EXPECT_EQ(record.history().rbegin()->stage(), ::referral::v1::STAGE_DECIDED);
  EXPECT_EQ(Counts().claimed, 0);

  auto outcomes = store_->List(Listing::kOutcomes, "test-school", 10, "");
  ASSERT_TRUE(outcomes.ok());
  EXPECT_THAT(Ids(outcomes->referrals), ElementsAre(submitted.referral_id()));
  EXPECT_THAT(
      store_->List(Listing::kOutcomes, "cambs-police", 10, "")->referrals,
      IsEmpty());
}

TEST_F(ReferralStoreTest, AcknowledgeOutcomeOnceForTheReferringAgencyOnly) {
  const auto submitted = Submit("a", absl::Hours(1));
  const auto not_decided = Submit("b", absl::Hours(2));
  const std::string id = submitted.referral_id();
  const auto claimed = Claim(1);
  ASSERT_TRUE(Decide(claimed[0]).ok());

  // Another agency cannot tell the referral exists.
  auto other = CommitNow(
      *store_, AcknowledgeCommand{id, "cambs-police", "agency:cambs-police"});
  EXPECT_EQ(other.status().code(), absl::StatusCode::kNotFound);
  auto unknown =
      CommitNow(*store_, AcknowledgeCommand{"REF-2026-000099", "cambs-police",
                                            "agency:cambs-police"});
  EXPECT_EQ(unknown.status().message(), other.status().message());

  clock_.Advance(absl::Minutes(1));
  const absl::Time ack_time = clock_.Now();
  auto ack = CommitNow(
      *store_, AcknowledgeCommand{id, "test-school", "agency:test-school"});
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_FALSE(ack->already_acknowledged);
  EXPECT_EQ(ack->acknowledged_at, ack_time);
  const StoredReferral record = Get(id);
  EXPECT_EQ(record.state(),
            ::referral::v1::REFERRAL_STATE_OUTCOME_ACKNOWLEDGED);
  EXPECT_EQ(record.history().rbegin()->stage(),
            ::referral::v1::STAGE_OUTCOME_ACKNOWLEDGED);
  EXPECT_THAT(
      store_->List(Listing::kOutcomes, "test-school", 10, "")->referrals,
      IsEmpty());

  clock_.Advance(absl::Minutes(1));
  auto again = CommitNow(
      *store_, AcknowledgeCommand{id, "test-school", "agency:test-school"});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->already_acknowledged);
  EXPECT_EQ(again->acknowledged_at, ack_time);
  EXPECT_EQ(Get(id).SerializeAsString(), record.SerializeAsString());

  auto early = CommitNow(
      *store_, AcknowledgeCommand{not_decided.referral_id(), "test-school",
                                  "agency:test-school"});
  EXPECT_EQ(early.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ReferralStoreTest, OutcomesAreListedOldestDecisionFirstInPages) {
  for (int i = 0; i < 5; ++i) Submit("k" + std::to_string(i), absl::Hours(1));
  std::vector<std::string> decided;
  for (const StoredReferral& claimed : Claim(5)) {
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(Decide(claimed).ok());
    decided.push_back(claimed.referral_id());
  }
  std::vector<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    auto page = store_->List(Listing::kOutcomes, "test-school", 2, token);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& record : page->referrals) {
      listed.push_back(record.referral_id());
    }
    token = page->next_page_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(listed, decided);
  EXPECT_EQ(pages, 3);
}

// --- Listing.
// ------------------------------------------------------------------

TEST_F(ReferralStoreTest, ListQueuePagesInDeliveryOrder) {
  std::vector<std::string> submitted;
  for (int i = 0; i < 5; ++i) {
    submitted.push_back(
        Submit("k" + std::to_string(i), absl::Hours(10 - i)).referral_id());
  }
  std::reverse(submitted.begin(), submitted.end());  // earliest due first
  auto first = store_->List(Listing::kQueue, kQueue, 2, "");
  ASSERT_TRUE(first.ok());
  EXPECT_THAT(Ids(first->referrals), ElementsAre(submitted[0], submitted[1]));
  ASSERT_FALSE(first->next_page_token.empty());
  auto second =
      store_->List(Listing::kQueue, kQueue, 2, first->next_page_token);
  ASSERT_TRUE(second.ok());
  EXPECT_THAT(Ids(second->referrals), ElementsAre(submitted[2], submitted[3]));
  auto third =
      store_->List(Listing::kQueue, kQueue, 2, second->next_page_token);
  ASSERT_TRUE(third.ok());
  EXPECT_THAT(Ids(third->referrals), ElementsAre(submitted[4]));
  EXPECT_TRUE(third->next_page_token.empty());

  // page_size <= 0 means the default of 50.
  EXPECT_EQ(store_->List(Listing::kQueue, kQueue, 0, "")->referrals.size(), 5u);

  for (const char* bad : {"zz", "00", "abc"}) {
    auto result = store_->List(Listing::kQueue, kQueue, 2, bad);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(result.status().message(), HasSubstr("page_token"));
  }
  // A token from another listing is not accepted either.
  auto other_queue =
      store_->List(Listing::kQueue, "other-queue", 2, first->next_page_token);
  EXPECT_EQ(other_queue.status().code(), absl::StatusCode::kInvalidArgument);
}

// --- Repeated concerns.
// --------------------------------------------------------

class RepeatedConcernTest : public ReferralStoreTest {
 protected:
  // A referral about the fictitious child, received at `received`.
  absl::StatusOr<SubmitResult> SubmitAbout(
      const std::string& key, absl::Time received,
      std::vector<ChildMatchKey> child_keys,
      ::referral::v1::PriorityBand band =
          ::referral::v1::PRIORITY_BAND_STANDARD) {
    SubmitCommand command = MakeSubmit(key, received);
    command.placement.band = band;
    command.child_keys = std::move(child_keys);
    command.concern_rule = RaiseAtThree();
    return CommitNow(*store_, std::move(command));
  }

  // A rule shaped like intake's (server/: the real numbers and words live
  // there): earlier referrals within a year count; from three about one
  // child the referral is a repeated concern and a standard one is raised.
  // Its detail repeats what the store counted, so tests can see it.
  static ConcernRule RaiseAtThree() {
    return ConcernRule{
        .lookback = absl::Hours(24 * 365),
        .assess = [](const EarlierReferralCounts& counts,
                     ::referral::v1::PriorityBand band) {
          ConcernAssessment assessed{
              .repeated_concern = false, .band = band, .raised_detail = ""};
          if (counts.most_for_one_child < 3) return assessed;
          assessed.repeated_concern = true;
          if (band == ::referral::v1::PRIORITY_BAND_STANDARD) {
            assessed.band = ::referral::v1::PRIORITY_BAND_RAISED;
            assessed.raised_detail =
                absl::StrCat("counted ", counts.most_for_one_child,
                             counts.capped ? " (capped)" : "");
          }
          return assessed;
        }};
  }

  static ChildMatchKey ByNhs(int child = 0) {
    return ChildMatchKey{child, "nhs:9990000018", "nhs_number"};
  }
  static ChildMatchKey ByName(int child = 0) {
    return ChildMatchKey{child, "nd:child|test|2015-04-01",
                         "name_and_date_of_birth"};
  }
};

TEST_F(RepeatedConcernTest, EarlierReferralsInTheLookbackAreCountedForTheRule) {
  const absl::Time now = clock_.Now();
  // Outside the 365-day window: never linked.
  ASSERT_TRUE(SubmitAbout("old", now - absl::Hours(24 * 400), {ByNhs()}).ok());
  std::vector<std::string> earlier;
  for (int days : {300, 100, 2}) {
    auto result = SubmitAbout("d" + std::to_string(days),
                              now - absl::Hours(24 * days), {ByNhs()});
    ASSERT_TRUE(result.ok());
    earlier.push_back(result->record.referral_id());
  }
  // The second of these already had two earlier ones: below the threshold.
  auto below = store_->GetReferral(earlier[2]);
  ASSERT_TRUE(below.ok());
  EXPECT_FALSE(below->repeated_concern());
  EXPECT_EQ(below->links_size(), 2);
  EXPECT_EQ(below->band(), ::referral::v1::PRIORITY_BAND_STANDARD);

  auto result = SubmitAbout("new", now, {ByNhs(), ByName()});
  ASSERT_TRUE(result.ok()) << result.status();
  const StoredReferral& record = result->record;
  EXPECT_TRUE(record.repeated_concern());
  EXPECT_EQ(record.band(), ::referral::v1::PRIORITY_BAND_RAISED);
  std::vector<std::string> linked;
  for (const auto& link : record.links()) {
    linked.push_back(link.referral_id());
    EXPECT_EQ(link.child_index(), 0);
    EXPECT_EQ(link.matched_by(), "nhs_number");
    EXPECT_EQ(link.agency_type(), ::referral::v1::AGENCY_TYPE_SCHOOL);
  }
  EXPECT_EQ(linked, earlier);
  ASSERT_EQ(record.earlier_referral_counts_size(), 1);
  EXPECT_EQ(record.earlier_referral_counts(0).count(), 3);
  EXPECT_FALSE(record.earlier_referral_counts(0).count_capped());
  const auto& raised = *record.history().rbegin();
  EXPECT_EQ(raised.stage(), ::referral::v1::STAGE_PRIORITY_RAISED);
  // The store gave the rule its count and stored the rule's words.
  EXPECT_EQ(raised.detail(), "counted 3");

  // Raised referrals go ahead of standard ones.
  const std::vector<std::string> order = QueueOrder();
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(order.front(), record.referral_id());
}

TEST_F(RepeatedConcernTest, AChildWithManyReferralsShowsTheNewestAndCounts) {
  // 130 earlier referrals in the window, an hour apart, found by NHS number
  // and by name: the record keeps the newest 20 (oldest first) and counts up
  // to 100, so the next referral about this child costs no more than that.
  const absl::Time now = clock_.Now();
  std::vector<std::string> earlier;
  for (int hours = 130; hours >= 1; --hours) {
    auto result = SubmitAbout("h" + std::to_string(hours),
                              now - absl::Hours(hours), {ByNhs(), ByName()});
    ASSERT_TRUE(result.ok()) << result.status();
    earlier.push_back(result->record.referral_id());
  }
  auto result = SubmitAbout("new", now, {ByNhs(), ByName()});
  ASSERT_TRUE(result.ok()) << result.status();
  const StoredReferral& record = result->record;
  std::vector<std::string> linked;
  for (const auto& link : record.links()) linked.push_back(link.referral_id());
  EXPECT_EQ(linked,
            std::vector<std::string>(earlier.end() - 20, earlier.end()));
  ASSERT_EQ(record.earlier_referral_counts_size(), 1);
  EXPECT_EQ(record.earlier_referral_counts(0).child_index(), 0);
  EXPECT_EQ(record.earlier_referral_counts(0).count(), 100);
  EXPECT_TRUE(record.earlier_referral_counts(0).count_capped());
  EXPECT_TRUE(record.repeated_concern());
  EXPECT_EQ(record.history().rbegin()->detail(), "counted 100 (capped)");
}

TEST_F(RepeatedConcernTest, ADifferentNhsNumberIsADifferentChild) {
  const absl::Time now = clock_.Now();
  ChildMatchKey first_name = ByName();
  first_name.nhs_number = "9990000018";
  ChildMatchKey first_nhs = ByNhs();
  first_nhs.nhs_number = "9990000018";
  ASSERT_TRUE(
      SubmitAbout("first", now - absl::Hours(48), {first_nhs, first_name})
          .ok());
  // Same name and date of birth, another NHS number: not linked.
  ChildMatchKey other_name = ByName();
  other_name.nhs_number = "9990000026";
  auto other = SubmitAbout(
      "other", now - absl::Hours(24),
      {ChildMatchKey{0, "nhs:9990000026", "nhs_number", "9990000026"},
       other_name});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->record.links_size(), 0);
  // Same name and date of birth with no NHS number given: linked to both,
  // because either may be this child.
  auto unknown = SubmitAbout("unknown", now, {ByName()});
  ASSERT_TRUE(unknown.ok());
  ASSERT_EQ(unknown->record.links_size(), 2);
  for (const auto& link : unknown->record.links()) {
    EXPECT_EQ(link.matched_by(), "name_and_date_of_birth");
    EXPECT_TRUE(link.nhs_number().empty()) << "index detail leaked";
  }
}

TEST_F(RepeatedConcernTest, SubmissionsInOneGroupCountEachOther) {
  // Enqueued back to back, these usually share one group commit; either way
  // each is counted against those applied before it.
  constexpr int kCopies = 4;
  std::vector<SubmitCommand> commands;
  for (int i = 0; i < kCopies; ++i) {
    commands.push_back(MakeSubmit(absl::StrCat("k", i), clock_.Now()));
    commands.back().child_keys = {ByNhs()};
    commands.back().concern_rule = RaiseAtThree();
  }
  std::vector<StoredReferral> records;
  for (auto& result : SubmitAtOnce(std::move(commands))) {
    ASSERT_TRUE(result.ok()) << result.status();
    records.push_back(result->record);
  }
  std::sort(records.begin(), records.end(),
            [](const StoredReferral& a, const StoredReferral& b) {
              return a.seq() < b.seq();
            });
  for (int i = 0; i < kCopies; ++i) {
    EXPECT_EQ(records[i].links_size(), i);
    EXPECT_EQ(records[i].repeated_concern(), i >= 3);
  }
}

TEST_F(RepeatedConcernTest, ABandTheRuleKeepsAddsNoRaisedEntry) {
  // RaiseAtThree, like intake's rule, never moves an immediate-risk referral.
  const absl::Time now = clock_.Now();
  for (int days : {30, 20, 10}) {
    ASSERT_TRUE(SubmitAbout("d" + std::to_string(days),
                            now - absl::Hours(24 * days), {ByName()})
                    .ok());
  }
  auto result = SubmitAbout("new", now, {ByName()},
                            ::referral::v1::PRIORITY_BAND_IMMEDIATE_RISK);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->record.repeated_concern());
  EXPECT_EQ(result->record.band(),
            ::referral::v1::PRIORITY_BAND_IMMEDIATE_RISK);
  EXPECT_EQ(result->record.links_size(), 3);
  EXPECT_EQ(result->record.links(0).matched_by(), "name_and_date_of_birth");
  EXPECT_THAT(Stages(result->record),
              Not(::testing::Contains(::referral::v1::STAGE_PRIORITY_RAISED)));
}

TEST_F(RepeatedConcernTest, EmptyMatchKeysNeverMatch) {
  const absl::Time now = clock_.Now();
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(SubmitAbout("k" + std::to_string(i), now,
                            {ChildMatchKey{0, "", "nhs_number"}})
                    .ok());
  }
  auto result = SubmitAbout("last", now, {ChildMatchKey{0, "", "nhs_number"}});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->record.links_size(), 0);
  EXPECT_FALSE(result->record.repeated_concern());
}

// --- Counts and events.
// --------------------------------------------------------

TEST_F(ReferralStoreTest, QueueCountsCoverReadyClaimedDeadAndDueTimes) {
  const absl::Time first_received = clock_.Now();
  Submit("claimed-overdue", -absl::Hours(2));  // due 2h ago; claimed below
  ASSERT_EQ(Claim(1).size(), 1u);
  clock_.Advance(absl::Minutes(1));
  const absl::Time oldest_ready = clock_.Now();
  Submit("overdue", -absl::Hours(1));
  clock_.Advance(absl::Minutes(1));
  Submit("due-soon", absl::Minutes(30));
  Submit("due-later", absl::Hours(5));
  Submit("due-exactly-in-an-hour", absl::Hours(1));
  // A dead letter in another queue.
  SubmitCommand other = MakeSubmit("elsewhere", clock_.Now(), "edt");
  ASSERT_TRUE(CommitNow(*store_, other).ok());

  const QueueCounts counts = Counts();
  EXPECT_EQ(counts.ready, 4);
  EXPECT_EQ(counts.claimed, 1);
  EXPECT_EQ(counts.dead_letters, 0);
  EXPECT_EQ(counts.overdue, 2);          // one ready, one claimed
  EXPECT_EQ(counts.due_within_hour, 2);  // 30 min and exactly 1 h
  ASSERT_TRUE(counts.oldest_ready_received_at.has_value());
  EXPECT_EQ(*counts.oldest_ready_received_at, oldest_ready);
  EXPECT_NE(*counts.oldest_ready_received_at, first_received);
  EXPECT_EQ(Counts("edt").ready, 1);

  // Every queue ever seen is listed, even when empty.
  ASSERT_EQ(Claim(10).size(), 4u);
  const QueueCounts drained = Counts();
  EXPECT_EQ(drained.ready, 0);
  EXPECT_EQ(drained.claimed, 5);
  EXPECT_FALSE(drained.oldest_ready_received_at.has_value());
  EXPECT_EQ(
      store_->GetCounts({.now = clock_.Now(), .queues = true}).queues.size(),
      2u);
}

TEST_F(ReferralStoreTest, OldestReadyFollowsClaimsAndReleases) {
  const absl::Time t0 = clock_.Now();
  Submit("a", absl::Hours(5));
  clock_.Advance(absl::Minutes(1));
  Submit("b", absl::Hours(1));  // delivered first
  clock_.Advance(absl::Minutes(1));
  Submit("c", absl::Hours(2));
  const auto b = Claim(1);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(*Counts().oldest_ready_received_at, t0);
  const auto c = Claim(1);
  const auto a = Claim(1);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_FALSE(Counts().oldest_ready_received_at.has_value());
  ASSERT_TRUE(Release(c[0]).ok());
  EXPECT_EQ(*Counts().oldest_ready_received_at, t0 + absl::Minutes(2));
  ASSERT_TRUE(Release(a[0]).ok());
  EXPECT_EQ(*Counts().oldest_ready_received_at, t0);
}

TEST_F(ReferralStoreTest, OldestReadyDueTimeIsThatOfTheOldestByReceipt) {
  const absl::Time t0 = clock_.Now();
  Submit("a", absl::Hours(5));  // oldest, but due last
  clock_.Advance(absl::Minutes(1));
  Submit("b", absl::Hours(1));  // due first, so delivered first
  clock_.Advance(absl::Minutes(1));
  Submit("c", absl::Hours(2));

  // Not the earliest due time among the ready (b's): the oldest one's.
  ASSERT_TRUE(Counts().oldest_ready_due_at.has_value());
  EXPECT_EQ(*Counts().oldest_ready_due_at, t0 + absl::Hours(5));
  const auto b = Claim(1);
  const auto c = Claim(1);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(*Counts().oldest_ready_due_at, t0 + absl::Hours(5));
  const auto a = Claim(1);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_FALSE(Counts().oldest_ready_due_at.has_value());
  // A released referral keeps its due time: c is now the oldest ready.
  ASSERT_TRUE(Release(c[0]).ok());
  EXPECT_EQ(*Counts().oldest_ready_due_at,
            t0 + absl::Minutes(2) + absl::Hours(2));
  Reopen();
  EXPECT_EQ(*Counts().oldest_ready_received_at, t0 + absl::Minutes(2));
  EXPECT_EQ(*Counts().oldest_ready_due_at,
            t0 + absl::Minutes(2) + absl::Hours(2));
}

TEST_F(ReferralStoreTest, CommittedEventsDescribeEachChangeInOrder) {
  SubmitCommand command = MakeSubmit("a", clock_.Now());
  command.placement.notified_queues = {"edt"};
  ASSERT_TRUE(CommitNow(*store_, command).ok());
  const auto claimed = Claim(1, absl::Minutes(5), "worker-9");
  ASSERT_TRUE(Decide(claimed[0]).ok());

  const auto events = TakeEvents();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].kind, Kind::kArrived);
  EXPECT_EQ(events[0].queue, kQueue);
  EXPECT_EQ(events[1].kind, Kind::kArrived);
  EXPECT_EQ(events[1].queue, "edt");
  EXPECT_EQ(events[2].kind, Kind::kClaimed);
  EXPECT_EQ(events[2].worker, "worker-9");
  EXPECT_EQ(events[3].kind, Kind::kDecided);
  for (const auto& event : events) {
    EXPECT_EQ(event.referral_id, "REF-2026-000001");
    EXPECT_EQ(event.band, ::referral::v1::PRIORITY_BAND_STANDARD);
  }
  // The notified queue is told, but holds nothing.
  EXPECT_EQ(store_->ReadyCount("edt"), 0);
}

TEST_F(ReferralStoreTest, EventsCarryAgencyTypeDecisionAndDeliveryAttempt) {
  SubmitCommand command = MakeSubmit("a", clock_.Now());
  command.referral.mutable_referrer()->set_agency_type(
      ::referral::v1::AGENCY_TYPE_POLICE);
  ASSERT_TRUE(CommitNow(*store_, command).ok());
  const auto first = Claim(1, absl::Minutes(1));  // delivery 1
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(Release(first[0]).ok());
  const auto second = Claim(1, absl::Minutes(1));  // delivery 2
  ASSERT_EQ(second.size(), 1u);
  clock_.Advance(absl::Minutes(2));
  ASSERT_EQ(CommitNow(*store_, ExpireLeasesCommand{}).value(), 1);
  const auto third = Claim(1);  // delivery 3, after an expired lease
  ASSERT_EQ(third.size(), 1u);
  ASSERT_TRUE(
      Decide(third[0], ::referral::v1::DECISION_NO_FURTHER_ACTION).ok());

  const auto events = TakeEvents();
  std::vector<Kind> kinds;
  std::vector<int> attempts;
  for (const CommittedChange& event : events) {
    kinds.push_back(event.kind);
    EXPECT_EQ(event.agency_type, ::referral::v1::AGENCY_TYPE_POLICE)
        << static_cast<int>(event.kind);
    EXPECT_FALSE(event.notice_only);
    if (event.kind == Kind::kClaimed) {
      attempts.push_back(event.delivery_attempt);
    } else {
      EXPECT_EQ(event.delivery_attempt, 0);
    }
    if (event.kind == Kind::kDecided) {
      EXPECT_EQ(event.decision, ::referral::v1::DECISION_NO_FURTHER_ACTION);
    } else {
      EXPECT_EQ(event.decision, ::referral::v1::DECISION_UNSPECIFIED);
    }
  }
  EXPECT_THAT(kinds,
              ElementsAre(Kind::kArrived, Kind::kClaimed, Kind::kReleased,
                          Kind::kClaimed, Kind::kLeaseExpired, Kind::kClaimed,
                          Kind::kDecided));
  EXPECT_THAT(attempts, ElementsAre(1, 2, 3));
}

TEST_F(ReferralStoreTest, ANotifiedQueueIsToldItHoldsOnlyANotice) {
  SubmitCommand command = MakeSubmit("a", clock_.Now());
  // A repeated notified queue still gets one event, and the work queue
  // itself is not "notified".
  command.placement.notified_queues = {"edt", kQueue, "edt", "mash-health"};
  ASSERT_TRUE(CommitNow(*store_, command).ok());

  const auto events = TakeEvents();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].queue, kQueue);
  EXPECT_FALSE(events[0].notice_only);
  EXPECT_EQ(events[1].queue, "edt");
  EXPECT_TRUE(events[1].notice_only);
  EXPECT_EQ(events[2].queue, "mash-health");
  EXPECT_TRUE(events[2].notice_only);
  for (const CommittedChange& event : events) {
    EXPECT_EQ(event.kind, Kind::kArrived);
    EXPECT_EQ(event.agency_type, ::referral::v1::AGENCY_TYPE_SCHOOL);
  }
}

// --- Failed commits.
// -----------------------------------------------------------

TEST_F(ReferralStoreTest, FullDiskFailsTheGroupAndChangesNothing) {
  const auto first = Submit("a", absl::Hours(1));
  TakeEvents();
  faults_->FailNextLogAppend(FaultInjectionFileSystem::Failure::kNoSpace);
  auto failed = CommitNow(*store_, MakeSubmit("b", clock_.Now()));
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(store_->ReadyCount(kQueue), 1);
  EXPECT_THAT(TakeEvents(), IsEmpty());
  // The seq was not used up, and the idempotency key was not taken.
  auto retried = CommitNow(*store_, MakeSubmit("b", clock_.Now()));
  ASSERT_TRUE(retried.ok());
  EXPECT_FALSE(retried->duplicate);
  EXPECT_EQ(retried->record.seq(), 2u);

  faults_->FailNextLogAppend(FaultInjectionFileSystem::Failure::kIoError);
  ClaimCommand claim;
  claim.queue = kQueue;
  claim.max = 1;
  EXPECT_EQ(CommitNow(*store_, claim).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(Get(first.referral_id()).state(),
            ::referral::v1::REFERRAL_STATE_QUEUED);
  EXPECT_EQ(Counts().claimed, 0);
  EXPECT_THAT(Ids(Claim(1)), ElementsAre(first.referral_id()));
}

// --- Durability.
// ---------------------------------------------------------------

TEST_F(ReferralStoreTest, ReopeningPreservesReferralsQueuesLeasesAndKeys) {
  std::vector<StoredReferral> submitted;
  for (int i = 0; i < 6; ++i) {
    submitted.push_back(Submit("k" + std::to_string(i), absl::Hours(6 - i)));
  }
  const auto claimed = Claim(2, absl::Minutes(10));
  ASSERT_EQ(claimed.size(), 2u);
  ASSERT_TRUE(Decide(claimed[0]).ok());
  const std::vector<std::string> order = QueueOrder();
  std::vector<std::string> stored;
  for (const auto& record : submitted) {
    stored.push_back(Get(record.referral_id()).SerializeAsString());
  }

  Reopen();

  for (size_t i = 0; i < submitted.size(); ++i) {
    EXPECT_EQ(Get(submitted[i].referral_id()).SerializeAsString(), stored[i]);
  }
  EXPECT_EQ(QueueOrder(), order);
  const QueueCounts counts = Counts();
  EXPECT_EQ(counts.ready, 4);
  EXPECT_EQ(counts.claimed, 1);
  EXPECT_EQ(
      store_->List(Listing::kOutcomes, "test-school", 10, "")->referrals.size(),
      1u);
  // Idempotency keys survive; seqs continue without reuse.
  auto repeat = CommitNow(*store_, MakeSubmit("k3", clock_.Now()));
  ASSERT_TRUE(repeat.ok());
  EXPECT_TRUE(repeat->duplicate);
  EXPECT_EQ(repeat->record.referral_id(), submitted[3].referral_id());
  EXPECT_EQ(Submit("k-new", absl::Hours(1)).seq(), 7u);

  // The open lease still works with its token.
  const StoredReferral leased = Get(claimed[1].referral_id());
  EXPECT_EQ(leased.state(), ::referral::v1::REFERRAL_STATE_CLAIMED);
  EXPECT_EQ(leased.lease().token(), claimed[1].lease().token());
  auto extended = CommitNow(
      *store_, ExtendCommand{leased.referral_id(), leased.lease().token(),
                             absl::Minutes(10), "t"});
  EXPECT_TRUE(extended.ok()) << extended.status();
}

TEST_F(ReferralStoreTest, DamagedTableFileIsRefusedAtOpenNamingTheFile) {
  for (int i = 0; i < 50; ++i) Submit("k" + std::to_string(i), absl::Hours(1));
  store_.reset();  // closing flushes everything into table files
  // The largest table file holds the referrals themselves, which nothing
  // reads at open unless the store checks.
  std::string table;
  uintmax_t size = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    if (entry.path().extension() == ".sst" && entry.file_size() > size) {
      size = entry.file_size();
      table = entry.path().string();
    }
  }
  ASSERT_FALSE(table.empty());
  {
    std::fstream file(table, std::ios::in | std::ios::out | std::ios::binary);
    const std::streamoff middle = static_cast<std::streamoff>(size / 2);
    file.seekg(middle);
    char byte = 0;
    file.get(byte);
    file.seekp(middle);
    file.put(static_cast<char>(~byte));
    ASSERT_TRUE(file.flush());
  }

  auto store = ReferralStore::Open(Options());
  ASSERT_FALSE(store.ok()) << "opened a damaged store";
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(),
              HasSubstr(std::filesystem::path(table).filename().string()));
  EXPECT_THAT(store.status().message(), HasSubstr("restore it from a backup"));
}

TEST_F(ReferralStoreTest, LeasesThatExpireWhileClosedComeBackAfterReopening) {
  Submit("a", absl::Hours(1));
  Submit("b", absl::Hours(2));
  const auto claimed = Claim(1, absl::Minutes(10));
  ASSERT_EQ(claimed.size(), 1u);
  store_.reset();
  clock_.Advance(absl::Minutes(30));  // expires while closed
  Open();
  EXPECT_EQ(Counts().claimed, 1);
  EXPECT_EQ(CommitNow(*store_, ExpireLeasesCommand{}).value(), 1);
  EXPECT_EQ(Counts().claimed, 0);
  EXPECT_EQ(Counts().ready, 2);
  // Back in its place, ahead of the one due later.
  EXPECT_EQ(QueueOrder().front(), claimed[0].referral_id());
}

TEST_F(ReferralStoreTest, ReopeningAfterReleasesKeepsTheirPlaces) {
  const auto a = Submit("a", absl::Hours(1));
  const auto b = Submit("b", absl::Hours(2));
  const auto c = Submit("c", absl::Hours(3));
  const auto first_two = Claim(2);
  ASSERT_EQ(first_two.size(), 2u);
  ASSERT_TRUE(Release(first_two[1]).ok());  // b
  Reopen();
  EXPECT_THAT(QueueOrder(), ElementsAre(b.referral_id(), c.referral_id()));
  ASSERT_TRUE(Release(first_two[0]).ok());  // a, after reopening
  EXPECT_THAT(Ids(Claim(5)),
              ElementsAre(a.referral_id(), b.referral_id(), c.referral_id()));
}

// --- Concurrency.
// --------------------------------------------------------------

TEST_F(ReferralStoreTest, ConcurrentSubmitsAllGetDistinctIdsAndAreStored) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 150;
  absl::Mutex mu;
  std::set<std::string> ids;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      absl::BlockingCounter finished(kPerThread);
      for (int i = 0; i < kPerThread; ++i) {
        store_->Commit(
            MakeSubmit("t" + std::to_string(t) + "-" + std::to_string(i),
                       clock_.Now()),
            [&](absl::StatusOr<SubmitResult> result) {
              EXPECT_TRUE(result.ok()) << result.status();
              if (result.ok()) {
                absl::MutexLock lock(&mu);
                ids.insert(result->record.referral_id());
              }
              finished.DecrementCount();
            });
      }
      finished.Wait();
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ids.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(store_->ReadyCount(kQueue), kThreads * kPerThread);

  Reopen();
  std::set<std::string> listed;
  std::string token;
  do {
    auto page = store_->List(Listing::kQueue, kQueue, 200, token);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& record : page->referrals) {
      listed.insert(record.referral_id());
    }
    token = page->next_page_token;
  } while (!token.empty());
  EXPECT_EQ(listed, ids);
}

TEST_F(ReferralStoreTest, ReadersRunAlongsideClaimsAndDecisions) {
  for (int i = 0; i < 300; ++i) Submit("k" + std::to_string(i), absl::Hours(1));
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      const auto counts =
          store_->GetCounts({.now = clock_.Now(), .queues = true}).queues;
      for (const auto& c : counts) {
        EXPECT_GE(c.ready, 0);
        EXPECT_LE(c.ready + c.claimed, 300);
      }
      auto page = store_->List(Listing::kQueue, kQueue, 20, "");
      EXPECT_TRUE(page.ok()) << page.status();
    }
  });
  for (;;) {
    const auto claimed = Claim(7);
    if (claimed.empty()) break;
    for (const auto& record : claimed) ASSERT_TRUE(Decide(record).ok());
  }
  done = true;
  reader.join();
  EXPECT_EQ(Counts().ready, 0);
  EXPECT_EQ(store_->List(Listing::kOutcomes, "test-school", 1000, "")
                ->referrals.size(),
            300u);
}

TEST_F(ReferralStoreTest, ClosingFinishesEveryAcceptedMutation) {
  // Destroying the store with work in flight completes every callback and
  // stores everything that was accepted.
  absl::BlockingCounter finished(50);
  for (int i = 0; i < 50; ++i) {
    store_->Commit(MakeSubmit("k" + std::to_string(i), clock_.Now()),
                   [&](absl::StatusOr<SubmitResult> result) {
                     EXPECT_TRUE(result.ok()) << result.status();
                     finished.DecrementCount();
                   });
  }
  store_.reset();
  finished.Wait();
  Open();
  EXPECT_EQ(store_->ReadyCount(kQueue), 50);
}

}  // namespace
}  // namespace referral::storage::testing
