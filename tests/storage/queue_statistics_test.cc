// Specifies the store's timeliness and feedback figures: time-to-decision
// percentiles per queue over a window (and the pruning that keeps their
// index about one window long), the referrer-feedback backlog per agency,
// and the notices kept for queues that routing only tells about a referral.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "key_codec.h"
#include "rocksdb/db.h"
#include "storage/referral_store.h"
#include "storage/store_test_util.h"

namespace referral::storage::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Failure = FaultInjectionFileSystem::Failure;

// Entries of one column family, read with RocksDB directly once the store is
// closed: what pruning left on disk.
int64_t CountFamilyKeys(const std::string& path, const std::string& family) {
  RawDatabase raw(path, /*read_only=*/true);
  if (!raw.ok() || raw.family(family) == nullptr) return -1;
  int64_t count = 0;
  std::unique_ptr<rocksdb::Iterator> it(
      raw.db().NewIterator(rocksdb::ReadOptions(), raw.family(family)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++count;
  return count;
}

class QueueStatisticsTest : public StoreTest {
 protected:
  void SetUp() override { Open(); }

  void Open(absl::Duration window = absl::Hours(24 * 28)) {
    StoreOptions options = Options();
    options.decision_stats_window = window;
    window_ = window;
    StoreTest::Open(std::move(options));
  }

  using StoreTest::Submit;
  StoredReferral Submit(const std::string& key, const std::string& queue,
                        const std::vector<std::string>& notified = {},
                        const std::string& agency = "test-school") {
    SubmitCommand command = MakeSubmit(key, clock_.Now(), queue);
    command.agency_id = agency;
    command.placement.notified_queues = notified;
    return Submit(std::move(command));
  }

  // Claims the head of `queue` and decides it now.
  StoredReferral ClaimAndDecide(const std::string& queue = kQueue) {
    const std::vector<StoredReferral> claimed =
        Claim(1, absl::Minutes(30), "worker-1", queue);
    if (claimed.size() != 1) {
      ADD_FAILURE() << "nothing to claim in " << queue;
      return StoredReferral();
    }
    auto decided = Decide(claimed[0]);
    EXPECT_TRUE(decided.ok()) << decided.status();
    return claimed[0];
  }

  absl::Duration window_;
};

// --- Key layouts.
// -------------------------------------------------------------

TEST(QueueStatisticsKeysTest, DecisionStatKeysSortByQueueThenTime) {
  const keys::DecisionStatKey key{"front-door", -5, 42};
  EXPECT_EQ(keys::DecodeDecisionStatKey(keys::EncodeDecisionStatKey(key)), key);
  EXPECT_LT(keys::EncodeDecisionStatKey({"a", 100, 9}),
            keys::EncodeDecisionStatKey({"a", 101, 1}));
  EXPECT_LT(keys::EncodeDecisionStatKey({"a", 1000, 9}),
            keys::EncodeDecisionStatKey({"a-b", 1, 1}));
  EXPECT_LE(keys::DecisionStatKeyBound("a", 100),
            keys::EncodeDecisionStatKey({"a", 100, 0}));
  EXPECT_FALSE(keys::DecodeDecisionStatKey("front-door").has_value());
  EXPECT_FALSE(keys::DecodeDecisionStatKey(std::string("q\0short", 7)));
}

TEST(QueueStatisticsKeysTest, NoticeKeysRoundTripAndRejectJunk) {
  const keys::NoticeKey key{"edt-out-of-hours", 1'700'000'000'000'000, 7};
  EXPECT_EQ(keys::DecodeNoticeKey(keys::EncodeNoticeKey(key)), key);
  EXPECT_LT(keys::EncodeNoticeKey({"edt", 1, 2}),
            keys::EncodeNoticeKey({"edt", 2, 1}));
  EXPECT_FALSE(keys::DecodeNoticeKey("").has_value());
  std::string bad_name = keys::EncodeNoticeKey(key);
  bad_name[0] = 'E';  // upper case is not a queue name
  EXPECT_FALSE(keys::DecodeNoticeKey(bad_name).has_value());
}

// --- Time to decision.
// --------------------------------------------------------

TEST_F(QueueStatisticsTest, PercentilesAreNearestRankOverTheWindow) {
  const absl::Time received = clock_.Now();
  for (int i = 0; i < 10; ++i) Submit("r" + std::to_string(i));
  // The i-th decision comes i hours after receipt: 1h..10h.
  for (int i = 1; i <= 10; ++i) {
    clock_.Advance(absl::Hours(1));
    ClaimAndDecide();
  }
  QueueCounts counts = Counts();
  EXPECT_EQ(counts.decision_window, absl::Hours(24 * 28));
  EXPECT_EQ(counts.decisions_in_window, 10);
  EXPECT_EQ(counts.time_to_decision_p50, absl::Hours(5));
  EXPECT_EQ(counts.time_to_decision_p90, absl::Hours(9));
  EXPECT_EQ(counts.time_to_decision_p99, absl::Hours(10));

  // 28 days after the fifth decision, the first five have left the window;
  // the one decided exactly at its start still counts.
  clock_.Advance(-absl::Hours(5) + absl::Hours(24 * 28));
  ASSERT_EQ(clock_.Now() - absl::Hours(24 * 28), received + absl::Hours(5));
  counts = Counts();
  EXPECT_EQ(counts.decisions_in_window, 6);  // 5h..10h
  EXPECT_EQ(counts.time_to_decision_p50, absl::Hours(7));
  EXPECT_EQ(counts.time_to_decision_p90, absl::Hours(10));
  EXPECT_EQ(counts.time_to_decision_p99, absl::Hours(10));

  clock_.Advance(absl::Hours(24 * 28));
  counts = Counts();
  EXPECT_EQ(counts.decisions_in_window, 0);
  EXPECT_FALSE(counts.time_to_decision_p50.has_value());
  EXPECT_FALSE(counts.time_to_decision_p99.has_value());
}

TEST_F(QueueStatisticsTest, FiguresArePerWorkQueueAndSurviveReopening) {
  Submit("a");
  Submit("b", "other-queue");
  clock_.Advance(absl::Minutes(90));
  ClaimAndDecide();
  EXPECT_EQ(Counts().decisions_in_window, 1);
  EXPECT_EQ(Counts().time_to_decision_p50, absl::Minutes(90));
  EXPECT_EQ(Counts("other-queue").decisions_in_window, 0);
  EXPECT_FALSE(Counts("other-queue").time_to_decision_p50.has_value());

  Close();
  Open();
  EXPECT_EQ(Counts().decisions_in_window, 1);
  EXPECT_EQ(Counts().time_to_decision_p90, absl::Minutes(90));
}

TEST_F(QueueStatisticsTest, DecisionsBeforeTheWindowArePrunedAFewAtATime) {
  Close();
  Open(absl::Hours(1));
  for (int i = 0; i < 23; ++i) Submit("r" + std::to_string(i));
  for (int i = 0; i < 20; ++i) ClaimAndDecide();
  EXPECT_EQ(Counts().decisions_in_window, 20);

  // Two hours on, each decision deletes up to 8 entries older than the
  // window: 8, then 8, then the last 4.
  clock_.Advance(absl::Hours(2));
  EXPECT_EQ(Counts().decisions_in_window, 0);
  for (int i = 0; i < 3; ++i) ClaimAndDecide();
  EXPECT_EQ(Counts().decisions_in_window, 3);
  Close();
  EXPECT_EQ(CountFamilyKeys(dir_.path(), "decisions"), 3);
  Open(absl::Hours(1));
  EXPECT_EQ(Counts().decisions_in_window, 3);
}

TEST_F(QueueStatisticsTest, AWindowMustBePositive) {
  Close();
  StoreOptions options;
  options.path = dir_.path();
  options.decision_stats_window = absl::ZeroDuration();
  EXPECT_EQ(ReferralStore::Open(std::move(options)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Referrer feedback backlog.
// ------------------------------------------------

TEST_F(QueueStatisticsTest, BacklogCountsUnacknowledgedAndOverdueOutcomes) {
  EXPECT_THAT(Backlog(absl::Hours(24)), IsEmpty());
  Submit("p1", kQueue, {}, "police");
  Submit("p2", kQueue, {}, "police");
  Submit("s1", kQueue, {}, "school");
  const absl::Time first_decision = clock_.Now() + absl::Hours(1);
  clock_.Advance(absl::Hours(1));
  const StoredReferral p1 = ClaimAndDecide();
  clock_.Advance(absl::Hours(1));
  ClaimAndDecide();  // p2
  clock_.Advance(absl::Hours(1));
  ClaimAndDecide();  // s1

  // Now: 2h, 1h and 0h since the three decisions.
  std::vector<OutcomeBacklog> backlog = Backlog(absl::Minutes(90));
  ASSERT_EQ(backlog.size(), 2u);
  EXPECT_EQ(backlog[0].agency_id, "police");
  EXPECT_EQ(backlog[0].unacknowledged, 2);
  EXPECT_EQ(backlog[0].overdue, 1);
  EXPECT_EQ(backlog[0].oldest_decided_at, first_decision);
  EXPECT_EQ(backlog[1].agency_id, "school");
  EXPECT_EQ(backlog[1].unacknowledged, 1);
  EXPECT_EQ(backlog[1].overdue, 0);
  // Decided exactly `within` ago counts as overdue.
  EXPECT_EQ(Backlog(absl::Hours(1))[0].overdue, 2);
  EXPECT_EQ(Backlog(absl::ZeroDuration())[1].overdue, 1);

  // Acknowledging the oldest moves the oldest on; an agency with nothing
  // left drops out.
  ASSERT_TRUE(CommitNow(*store_, AcknowledgeCommand{p1.referral_id(), "police",
                                                    "agency"})
                  .ok());
  backlog = Backlog(absl::Minutes(90));
  ASSERT_EQ(backlog.size(), 2u);
  EXPECT_EQ(backlog[0].unacknowledged, 1);
  EXPECT_EQ(backlog[0].overdue, 0);
  EXPECT_EQ(backlog[0].oldest_decided_at, first_decision + absl::Hours(1));

  Close();
  Open();
  backlog = Backlog(absl::Minutes(30));
  ASSERT_EQ(backlog.size(), 2u);
  EXPECT_EQ(backlog[0].overdue, 1);
  EXPECT_EQ(backlog[1].overdue, 0);
}

// --- Notices.
// ------------------------------------------------------------------

TEST_F(QueueStatisticsTest, NotifiedQueuesListTheirNoticesNewestFirst) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    // Told twice, and the work queue named too: one notice per queue.
    ids.push_back(
        Submit("n" + std::to_string(i), kQueue, {"edt", "edt", kQueue})
            .referral_id());
    clock_.Advance(absl::Minutes(10));
  }
  Submit("quiet");  // notifies nobody

  auto first = store_->List(Listing::kNotices, "edt", 2, "");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Ids(first->referrals), ElementsAre(ids[4], ids[3]));
  ASSERT_FALSE(first->next_page_token.empty());
  auto second =
      store_->List(Listing::kNotices, "edt", 2, first->next_page_token);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(Ids(second->referrals), ElementsAre(ids[2], ids[1]));
  auto last =
      store_->List(Listing::kNotices, "edt", 2, second->next_page_token);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_THAT(Ids(last->referrals), ElementsAre(ids[0]));
  EXPECT_TRUE(last->next_page_token.empty());

  // The work queue holds the referrals and has no notices of its own.
  auto work = store_->List(Listing::kNotices, kQueue, 10, "");
  ASSERT_TRUE(work.ok());
  EXPECT_THAT(work->referrals, IsEmpty());

  // Each notice shows the referral as it is now.
  const StoredReferral decided = ClaimAndDecide();
  EXPECT_EQ(decided.referral_id(), ids[0]);
  auto all = store_->List(Listing::kNotices, "edt", 10, "");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->referrals.size(), 5u);
  EXPECT_EQ(all->referrals.back().state(),
            ::referral::v1::REFERRAL_STATE_DECIDED);
  EXPECT_EQ(all->referrals.back().queue(), kQueue);
}

TEST_F(QueueStatisticsTest, NoticesAreCountedForTheLast24Hours) {
  EXPECT_FALSE(store_->ReadyCount("edt").has_value());
  Submit("old", kQueue, {"edt"});
  clock_.Advance(absl::Hours(20));
  Submit("new", kQueue, {"edt"});

  // The notified queue is known (and counted) though it holds no work.
  EXPECT_TRUE(store_->ReadyCount("edt").has_value());
  EXPECT_EQ(Counts("edt").ready, 0);
  EXPECT_EQ(Counts("edt").notices_last_24h, 2);
  EXPECT_EQ(Counts().notices_last_24h, 0);
  clock_.Advance(absl::Hours(4));  // the first is exactly 24h old
  EXPECT_EQ(Counts("edt").notices_last_24h, 2);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Counts("edt").notices_last_24h, 1);

  Close();
  Open();
  EXPECT_TRUE(store_->ReadyCount("edt").has_value());
  EXPECT_EQ(Counts("edt").notices_last_24h, 1);
  auto page = store_->List(Listing::kNotices, "edt", 0, "");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->referrals.size(), 2u);
}

TEST_F(QueueStatisticsTest, ABadQueueOrPageTokenIsRefused) {
  Submit("a", kQueue, {"edt"});
  EXPECT_EQ(store_->List(Listing::kNotices, "EDT", 10, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->List(Listing::kNotices, "edt", 10, "zz").status().code(),
            absl::StatusCode::kInvalidArgument);
  // Another queue's token is not a token of this listing.
  Submit("b", kQueue, {"other"});
  Submit("c", kQueue, {"other"});
  auto other = store_->List(Listing::kNotices, "other", 1, "");
  ASSERT_TRUE(other.ok());
  ASSERT_FALSE(other->next_page_token.empty());
  EXPECT_EQ(store_->List(Listing::kNotices, "edt", 1, other->next_page_token)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(QueueStatisticsTest, AFailedCommitLeavesNoNoticeAndNoDecisionStat) {
  faults_->FailNextLogAppend(Failure::kIoError);
  SubmitCommand command = MakeSubmit("a", clock_.Now());
  command.placement.notified_queues = {"edt"};
  EXPECT_FALSE(CommitNow(*store_, command).ok());
  EXPECT_FALSE(store_->ReadyCount("edt").has_value());
  EXPECT_THAT(Page(Listing::kNotices, "edt").referrals, IsEmpty());

  ASSERT_TRUE(CommitNow(*store_, command).ok());
  const std::vector<StoredReferral> claimed = Claim(1);
  ASSERT_EQ(claimed.size(), 1u);
  faults_->FailNextLogAppend(Failure::kIoError);
  const DecideCommand decide =
      MakeDecide(claimed[0], ::referral::v1::DECISION_NO_FURTHER_ACTION);
  EXPECT_FALSE(CommitNow(*store_, decide).ok());
  EXPECT_EQ(Counts().decisions_in_window, 0);
  EXPECT_THAT(Backlog(absl::Hours(1)), IsEmpty());
  ASSERT_TRUE(CommitNow(*store_, decide).ok());
  EXPECT_EQ(Counts().decisions_in_window, 1);
  EXPECT_EQ(Counts().time_to_decision_p50, absl::ZeroDuration());
}

}  // namespace
}  // namespace referral::storage::testing
