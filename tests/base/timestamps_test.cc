// Specification of the time conversions: microseconds, Timestamps and
// Durations agree with each other, before the epoch too, and the text forms.
#include "base/timestamps.h"

#include "absl/time/civil_time.h"
#include "gtest/gtest.h"

namespace referral {
namespace {

absl::Time At(int y, int m, int d, int hh, int mm, int ss) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss),
                         absl::UTCTimeZone());
}

TEST(TimestampsTest, MicrosRoundTrip) {
  const absl::Time t = At(2026, 11, 23, 20, 58, 7) + absl::Microseconds(123456);
  EXPECT_EQ(FromMicros(ToMicros(t)), t);
  EXPECT_EQ(ToMicros(absl::UnixEpoch()), 0);
}

TEST(TimestampsTest, TimestampCarriesMicrosecondsWithNonNegativeNanos) {
  const google::protobuf::Timestamp after =
      ToTimestamp(absl::UnixEpoch() + absl::Microseconds(1'500'001));
  EXPECT_EQ(after.seconds(), 1);
  EXPECT_EQ(after.nanos(), 500'001'000);
  // Before the epoch the seconds round down and the nanos stay positive.
  const google::protobuf::Timestamp before = MicrosToTimestamp(-1);
  EXPECT_EQ(before.seconds(), -1);
  EXPECT_EQ(before.nanos(), 999'999'000);
  EXPECT_EQ(FromTimestamp(before), absl::UnixEpoch() - absl::Microseconds(1));
}

TEST(TimestampsTest, DurationsRoundTrip) {
  const absl::Duration d = absl::Hours(26) + absl::Milliseconds(3);
  const google::protobuf::Duration proto = ToDurationProto(d);
  EXPECT_EQ(proto.seconds(), 26 * 3600);
  EXPECT_EQ(proto.nanos(), 3'000'000);
  EXPECT_EQ(FromDurationProto(proto), d);
  EXPECT_EQ(FromDurationProto(ToDurationProto(-d)), -d);
}

TEST(TimestampsTest, TextFormsAreUtc) {
  const absl::Time t = At(2026, 3, 29, 1, 30, 0) + absl::Microseconds(7);
  EXPECT_EQ(FormatUtcSeconds(t), "2026-03-29T01:30:00Z");
  EXPECT_EQ(FormatUtcMicros(t), "2026-03-29T01:30:00.000007Z");
}

}  // namespace
}  // namespace referral
