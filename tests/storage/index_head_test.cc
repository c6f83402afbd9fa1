// Specifies IndexHead: the low-water mark below which no live index key
// remains except known stragglers, and the undo log that makes a failed
// mutation leave it unchanged.
#include "index_head.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace referral::storage {
namespace {

TEST(IndexHeadTest, FirstInsertIntoAnEmptyRangeBecomesTheMark) {
  UndoLog undo;
  IndexHead head("q", 0);
  head.Insert("q5", "", &undo);
  EXPECT_EQ(head.low_water(), "q5");
  EXPECT_EQ(head.live(), 1);
  EXPECT_TRUE(head.stragglers().empty());
}

TEST(IndexHeadTest, InsertBelowTheMarkIsRememberedNotSoughtFor) {
  UndoLog undo;
  IndexHead head("q5", 1);
  head.Insert("q3", "value", &undo);
  // The mark stays where it is: lowering it would make the next seek cross
  // every tombstone between q3 and q5.
  EXPECT_EQ(head.low_water(), "q5");
  ASSERT_EQ(head.stragglers().size(), 1u);
  EXPECT_EQ(head.stragglers().begin()->first, "q3");
  EXPECT_EQ(head.stragglers().begin()->second, "value");
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
  EXPECT_EQ(head.stragglers().size(), 1u);
  // ...and erasing it needs no seek at all.
  head.Erase("q5", &undo);
  EXPECT_TRUE(head.stragglers().empty());
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
  EXPECT_EQ(head.stragglers(), before.stragglers());
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

}  // namespace
}  // namespace referral::storage
