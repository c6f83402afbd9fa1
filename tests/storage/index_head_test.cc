// Specifies IndexHead: the low-water mark below which no live index key
// remains except known stragglers, and the undo log that makes a failed
// mutation leave it unchanged.
#include "index_head.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace referral::storage {
namespace {

using Stragglers = std::map<std::string, std::string>;

Stragglers StragglersOf(const IndexHead& head) {
  Stragglers stragglers;
  head.VisitStragglers(nullptr,
                       [&](const std::string& key, const std::string& value) {
                         stragglers.emplace(key, value);
                         return true;
                       });
  EXPECT_EQ(stragglers.size(), head.straggler_count());
  return stragglers;
}

TEST(IndexHeadTest, FirstInsertIntoAnEmptyRangeBecomesTheMark) {
  UndoLog undo;
  IndexHead head("q", 0);
  head.Insert("q5", "", &undo);
  EXPECT_EQ(head.low_water(), "q5");
  EXPECT_EQ(head.live(), 1);
  EXPECT_TRUE(StragglersOf(head).empty());
}

TEST(IndexHeadTest, InsertBelowTheMarkIsRememberedNotSoughtFor) {
  UndoLog undo;
  IndexHead head("q5", 1);
  head.Insert("q3", "value", &undo);
  // The mark stays where it is: lowering it would make the next seek cross
  // every tombstone between q3 and q5.
  EXPECT_EQ(head.low_water(), "q5");
  EXPECT_EQ(StragglersOf(head), (Stragglers{{"q3", "value"}}));
  EXPECT_EQ(head.live(), 2);
  EXPECT_EQ(head.live_from_low_water(), 1);
}

TEST(IndexHeadTest, ErasingTheHeadAsksForAnAdvance) {
  UndoLog undo;
  IndexHead head("q1", 3);
  head.Erase("q1", &undo);
  EXPECT_TRUE(head.needs_advance());
  head.Advance(std::string("q2"), &undo);
  EXPECT_FALSE(head.needs_advance());
  EXPECT_EQ(head.low_water(), "q2");
  EXPECT_EQ(head.live(), 2);
}

TEST(IndexHeadTest, AdvancingPastAnEmptyRangeSkipsEveryErasedKey) {
  UndoLog undo;
  IndexHead head("q1", 2);
  head.Erase("q1", &undo);
  head.Erase("q9", &undo);
  head.Advance(std::nullopt, &undo);
  // Past the largest erased key: "q9" + "\0".
  EXPECT_EQ(head.low_water(), std::string("q9\0", 3));
  EXPECT_EQ(head.live(), 0);
  // Something due earlier than the erased keys is a straggler...
  head.Insert("q5", "", &undo);
  EXPECT_EQ(StragglersOf(head).size(), 1u);
  // ...and erasing it needs no seek at all.
  head.Erase("q5", &undo);
  EXPECT_TRUE(StragglersOf(head).empty());
  EXPECT_EQ(head.live(), 0);
}

TEST(IndexHeadTest, RaiseToMovesTheMarkOnlyForward) {
  UndoLog undo;
  IndexHead head("m", 0);
  head.RaiseTo("k", &undo);
  EXPECT_EQ(head.low_water(), "m");
  head.RaiseTo("p", &undo);
  EXPECT_EQ(head.low_water(), "p");
}

TEST(IndexHeadTest, RollbackRestoresEverything) {
  UndoLog undo;
  IndexHead head("q5", 2);
  head.Insert("q3", "", &undo);
  const IndexHead before = head;
  const UndoLog::Mark mark = undo.mark();
  head.Insert("q1", "", &undo);
  head.Erase("q3", &undo);
  head.Erase("q5", &undo);
  head.Advance(std::string("q7"), &undo);
  head.Insert("q8", "", &undo);
  undo.RollbackTo(mark);
  EXPECT_EQ(head.low_water(), before.low_water());
  EXPECT_EQ(StragglersOf(head), StragglersOf(before));
  EXPECT_EQ(head.live(), before.live());
  EXPECT_EQ(head.needs_advance(), before.needs_advance());
  // And the erased-key memory is restored too: advancing over an empty
  // range does not jump past keys that were never erased.
  head.Erase("q3", &undo);
  head.Erase("q5", &undo);
  head.Erase("q6", &undo);
  head.Advance(std::nullopt, &undo);
  EXPECT_EQ(head.low_water(), std::string("q6\0", 3));
}

// A committed head with the mark at q5 and stragglers q1 and q3.
IndexHead CommittedWithStragglers() {
  UndoLog undo;
  IndexHead head("q5", 1);
  head.Insert("q1", "one", &undo);
  head.Insert("q3", "three", &undo);
  return head;
}

TEST(IndexHeadTest, AnOverlaySeesTheCommittedStragglersAndLeavesThemAlone) {
  const IndexHead committed = CommittedWithStragglers();
  UndoLog undo;
  IndexHead overlay = IndexHead::OverlayOn(committed);
  EXPECT_EQ(StragglersOf(overlay), StragglersOf(committed));
  EXPECT_EQ(overlay.low_water(), "q5");
  EXPECT_EQ(overlay.live(), 3);

  overlay.Insert("q2", "two", &undo);
  overlay.Erase("q1", &undo);
  overlay.Insert("q4", "four", &undo);
  EXPECT_EQ(StragglersOf(overlay),
            (Stragglers{{"q2", "two"}, {"q3", "three"}, {"q4", "four"}}));
  EXPECT_EQ(overlay.live(), 4);
  EXPECT_EQ(overlay.live_from_low_water(), 1);
  // Erasing a committed straggler is no reason to seek from the mark.
  EXPECT_FALSE(overlay.needs_advance());

  EXPECT_EQ(StragglersOf(committed),
            (Stragglers{{"q1", "one"}, {"q3", "three"}}));
  EXPECT_EQ(committed.live(), 3);
}

TEST(IndexHeadTest, AbsorbingAnOverlayMakesTheCommittedHeadEqualIt) {
  IndexHead committed = CommittedWithStragglers();
  UndoLog undo;
  IndexHead overlay = IndexHead::OverlayOn(committed);
  overlay.Erase("q3", &undo);
  overlay.Insert("q0", "zero", &undo);
  overlay.Erase("q5", &undo);
  overlay.Advance(std::string("q7"), &undo);
  const Stragglers expected = StragglersOf(overlay);

  committed.Absorb(std::move(overlay));
  EXPECT_EQ(StragglersOf(committed), expected);
  EXPECT_EQ(expected, (Stragglers{{"q0", "zero"}, {"q1", "one"}}));
  EXPECT_EQ(committed.low_water(), "q7");
  EXPECT_EQ(committed.live(), 2);
  EXPECT_FALSE(committed.needs_advance());
}

TEST(IndexHeadTest, RollingBackAnOverlayBringsBackWhatItErased) {
  const IndexHead committed = CommittedWithStragglers();
  UndoLog undo;
  IndexHead overlay = IndexHead::OverlayOn(committed);
  overlay.Insert("q2", "two", &undo);
  const UndoLog::Mark mark = undo.mark();
  overlay.Erase("q1", &undo);
  overlay.Erase("q2", &undo);
  overlay.Insert("q4", "four", &undo);
  undo.RollbackTo(mark);
  EXPECT_EQ(StragglersOf(overlay),
            (Stragglers{{"q1", "one"}, {"q2", "two"}, {"q3", "three"}}));
  EXPECT_EQ(overlay.live(), 4);
}

TEST(IndexHeadTest, StragglersAreVisitedInKeyOrderFromAfterUntilTold) {
  const IndexHead committed = CommittedWithStragglers();
  UndoLog undo;
  IndexHead overlay = IndexHead::OverlayOn(committed);
  overlay.Insert("q0", "", &undo);
  overlay.Insert("q2", "", &undo);
  overlay.Insert("q4", "", &undo);
  auto visit_two_after_q1 = [](const IndexHead& head) {
    std::vector<std::string> visited;
    const std::string after = "q1";
    head.VisitStragglers(&after,
                         [&](const std::string& key, const std::string&) {
                           visited.push_back(key);
                           return visited.size() < 2;
                         });
    return visited;
  };
  EXPECT_EQ(visit_two_after_q1(committed), std::vector<std::string>{"q3"});
  const std::vector<std::string> merged = {"q2", "q3"};
  EXPECT_EQ(visit_two_after_q1(overlay), merged);
}

// "k00042": keys that sort as their numbers do.
std::string Key(int n) { return absl::StrFormat("k%05d", n); }

TEST(IndexHeadTest, BeyondTheStragglerLimitTheMarkDropsToTheFirstLiveKey) {
  UndoLog undo;
  const int limit = static_cast<int>(IndexHead::kMaxStragglers);
  IndexHead head(Key(90000), 1);
  for (int i = 0; i < limit; ++i) head.Insert(Key(1000 + i), "", &undo);
  ASSERT_EQ(head.straggler_count(), IndexHead::kMaxStragglers);
  ASSERT_EQ(head.low_water(), Key(90000));

  // One more: no longer remembered one by one.
  head.Insert(Key(500), "", &undo);
  EXPECT_EQ(head.straggler_count(), 0u);
  EXPECT_EQ(head.low_water(), Key(500));
  EXPECT_EQ(head.live(), limit + 2);
  EXPECT_EQ(head.live_from_low_water(), limit + 2);
  // Erasing a former straggler is an ordinary erase now.
  head.Erase(Key(500), &undo);
  EXPECT_TRUE(head.needs_advance());
}

TEST(IndexHeadTest, AnOverlayPastTheLimitDropsTheCommittedStragglersOnAbsorb) {
  UndoLog setup;
  const int limit = static_cast<int>(IndexHead::kMaxStragglers);
  IndexHead committed(Key(90000), 1);
  for (int i = 0; i < limit; ++i) committed.Insert(Key(1000 + i), "", &setup);

  UndoLog undo;
  IndexHead overlay = IndexHead::OverlayOn(committed);
  const UndoLog::Mark mark = undo.mark();
  overlay.Insert(Key(5000), "", &undo);  // above the first straggler
  EXPECT_EQ(overlay.straggler_count(), 0u);
  EXPECT_EQ(overlay.low_water(), Key(1000));
  EXPECT_TRUE(StragglersOf(overlay).empty());
  // A committed straggler is an ordinary key of the overlay now.
  overlay.Erase(Key(1000), &undo);
  EXPECT_TRUE(overlay.needs_advance());
  EXPECT_EQ(committed.straggler_count(), IndexHead::kMaxStragglers);

  // Rolled back, the overlay sees the committed stragglers again.
  undo.RollbackTo(mark);
  EXPECT_EQ(overlay.straggler_count(), IndexHead::kMaxStragglers);
  EXPECT_EQ(overlay.low_water(), Key(90000));
  EXPECT_FALSE(overlay.needs_advance());

  overlay.Insert(Key(7), "", &undo);
  committed.Absorb(std::move(overlay));
  EXPECT_EQ(committed.straggler_count(), 0u);
  EXPECT_EQ(committed.low_water(), Key(7));
  EXPECT_EQ(committed.live(), limit + 2);
}

}  // namespace
}  // namespace referral::storage
