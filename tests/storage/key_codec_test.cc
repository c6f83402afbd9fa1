// Specifies the store's key layouts: keys sort in the order the store reads
// them, encode and decode round-trip, and decoding arbitrary bytes never
// crashes (it returns nullopt).
#include "key_codec.h"

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace referral::storage::keys {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// Whatever `decode` makes of `bytes` must encode back to them.
template <typename Decode, typename Encode>
void ExpectReencodes(Decode decode, Encode encode, const std::string& bytes) {
  if (auto decoded = decode(bytes)) EXPECT_EQ(encode(*decoded), bytes);
}

std::string Ready(uint8_t band, int64_t due, uint64_t seq, uint32_t gen = 0,
                  const std::string& queue = "front-door") {
  return EncodeReadyKey({queue, band, due, seq, gen});
}

TEST(ReadyKeyTest, BandComesBeforeDueTimeAndDueTimeBeforeArrival) {
  // Immediate risk (1) due late still goes before standard (3) due early.
  EXPECT_LT(Ready(1, 1'000'000, 9), Ready(3, -5, 1));
  EXPECT_LT(Ready(2, 500, 9), Ready(3, 100, 1));
  // Same band: earlier due first, whatever the arrival.
  EXPECT_LT(Ready(3, 100, 9), Ready(3, 200, 1));
  // Same band and due time: arrival (seq) order.
  EXPECT_LT(Ready(3, 100, 1), Ready(3, 100, 2));
  EXPECT_LT(Ready(3, 100, 255), Ready(3, 100, 256));
}

TEST(ReadyKeyTest, DueTimesOrderNumericallyAcrossZero) {
  const std::vector<int64_t> times = {kMin, -1'000'000, -256, -1,        0,
                                      1,    255,        256,  1'000'000, kMax};
  for (size_t i = 1; i < times.size(); ++i) {
    EXPECT_LT(Ready(3, times[i - 1], 1), Ready(3, times[i], 1))
        << times[i - 1] << " vs " << times[i];
    EXPECT_LT(EncodeTime(times[i - 1]), EncodeTime(times[i]));
  }
}

TEST(ReadyKeyTest, ReleasedReferralKeepsItsPlaceWithANewGeneration) {
  // A new generation is a different key in the same position relative to
  // every other referral.
  EXPECT_NE(Ready(3, 100, 5, 0), Ready(3, 100, 5, 1));
  EXPECT_LT(Ready(3, 100, 4, 9), Ready(3, 100, 5, 1));
  EXPECT_LT(Ready(3, 100, 5, 1), Ready(3, 100, 6, 0));
}

TEST(ReadyKeyTest, QueuesDoNotInterleave) {
  // "a" is a prefix of "a-b", but the terminator keeps their ranges apart.
  const std::string a_last = Ready(255, kMax, UINT64_MAX, UINT32_MAX, "a");
  const std::string ab_first = Ready(0, kMin, 0, 0, "a-b");
  EXPECT_LT(a_last, NamePrefixEnd("a"));
  EXPECT_FALSE(ab_first >= NamePrefix("a") && ab_first < NamePrefixEnd("a"));
  EXPECT_GE(Ready(0, kMin, 0, 0, "a"), NamePrefix("a"));
}

TEST(ReadyKeyTest, BoundsBracketTheirKeys) {
  EXPECT_LE(ReadyKeyBound("q", 3, 100), EncodeReadyKey({"q", 3, 100, 0, 0}));
  EXPECT_LT(EncodeReadyKey({"q", 3, 99, UINT64_MAX, UINT32_MAX}),
            ReadyKeyBound("q", 3, 100));
}

TEST(ReadyKeyTest, RoundTrips) {
  const ReadyKey key{"front-door", 2, -42, 123456789, 7};
  EXPECT_EQ(DecodeReadyKey(EncodeReadyKey(key)), key);
}

TEST(ArrivalKeyTest, OrdersBySeqAndRoundTrips) {
  EXPECT_LT(EncodeArrivalKey({"q", 1, 9}), EncodeArrivalKey({"q", 2, 0}));
  const ArrivalKey key{"q-1", 77, 3};
  EXPECT_EQ(DecodeArrivalKey(EncodeArrivalKey(key)), key);
}

TEST(LeaseKeyTest, OrdersByExpiryAndRoundTrips) {
  EXPECT_LT(EncodeLeaseKey({-5, 9, 0}), EncodeLeaseKey({5, 1, 0}));
  EXPECT_LT(EncodeLeaseKey({5, 9, 9}), LeaseKeyBound(6));
  EXPECT_LE(LeaseKeyBound(5), EncodeLeaseKey({5, 0, 0}));
  const LeaseKey key{1'700'000'000'000'000, 12, 2};
  EXPECT_EQ(DecodeLeaseKey(EncodeLeaseKey(key)), key);
}

TEST(DeadLetterKeyTest, OrdersByDeadLetteringTimeAndRoundTrips) {
  EXPECT_LT(EncodeDeadLetterKey({"q", 10, 99, 0}),
            EncodeDeadLetterKey({"q", 11, 1, 0}));
  const DeadLetterKey key{"q", -3, 4, 5};
  EXPECT_EQ(DecodeDeadLetterKey(EncodeDeadLetterKey(key)), key);
}

TEST(OutcomeKeyTest, OrdersByDecisionTimeAndRoundTrips) {
  EXPECT_LT(EncodeOutcomeKey({"cambs-police", 10, 99}),
            EncodeOutcomeKey({"cambs-police", 11, 1}));
  const OutcomeKey key{"cambs-police", 42, 43};
  EXPECT_EQ(DecodeOutcomeKey(EncodeOutcomeKey(key)), key);
}

TEST(IdempotencyKeyTest, RoundTripsAnyKeyBytes) {
  const IdempotencyKey key{"cambs-police", std::string("k\0e|y", 5)};
  EXPECT_EQ(DecodeIdempotencyKey(EncodeIdempotencyKey(key)), key);
  // Different agencies never share a key.
  EXPECT_NE(EncodeIdempotencyKey({"a", "b-c"}),
            EncodeIdempotencyKey({"a-b", "c"}));
}

TEST(ChildLinkKeyTest, OrdersByReceivedTimeAndRoundTrips) {
  const std::string match = "nd:smith|alex|2015-04-01";
  EXPECT_LT(EncodeChildLinkKey({match, 5, 9}),
            EncodeChildLinkKey({match, 6, 1}));
  EXPECT_LE(ChildLinkKeyBound(match, 5), EncodeChildLinkKey({match, 5, 0}));
  const ChildLinkKey key{"nhs:9990000018", -7, 3};
  EXPECT_EQ(DecodeChildLinkKey(EncodeChildLinkKey(key)), key);
}

TEST(MetaKeyTest, KnownQueueRoundTrips) {
  EXPECT_EQ(DecodeKnownQueueMetaKey(KnownQueueMetaKey("front-door")),
            "front-door");
  EXPECT_EQ(DecodeKnownQueueMetaKey(NextSeqMetaKey()), std::nullopt);
}

TEST(ReferralIdTest, FormatsWithAtLeastSixDigits) {
  EXPECT_EQ(FormatReferralId(2026, 42), "REF-2026-000042");
  EXPECT_EQ(FormatReferralId(2026, 1234567), "REF-2026-1234567");
}

TEST(ReferralIdTest, ParsesStrictly) {
  auto parsed = ParseReferralId("REF-2026-000042");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->year, 2026);
  EXPECT_EQ(parsed->seq, 42u);
  for (const char* bad : {"", "REF-", "REF-2026-42", "ref-2026-000042",
                          "REF-2026-00004x", "REF-202-000042", "REF-2026000042",
                          " REF-2026-000042", "REF-2026-000042 ",
                          "REF-2026-99999999999999999999", "REF-2026--00042"}) {
    EXPECT_EQ(ParseReferralId(bad), std::nullopt) << bad;
  }
}

TEST(HexTest, RoundTripsAndRejectsNonHex) {
  const std::string bytes("\x00\x7f\x80\xff", 4);
  EXPECT_EQ(ToHex(bytes), "007f80ff");
  EXPECT_EQ(FromHex("007f80ff"), bytes);
  EXPECT_EQ(FromHex("abc"), std::nullopt);
  EXPECT_EQ(FromHex("zz"), std::nullopt);
  EXPECT_EQ(FromHex("AB"), std::nullopt);
}

TEST(NameTest, AcceptsOnlyServerQueueNames) {
  EXPECT_TRUE(IsValidName("front-door"));
  EXPECT_TRUE(IsValidName(std::string(64, 'a')));
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName(std::string(65, 'a')));
  EXPECT_FALSE(IsValidName("Front"));
  EXPECT_FALSE(IsValidName(std::string("a\0b", 3)));
}

TEST(DecodeTest, TruncatedAndExtendedKeysAreRejected) {
  const std::string ready = Ready(3, 100, 5, 1);
  for (size_t n = 0; n < ready.size(); ++n) {
    EXPECT_EQ(DecodeReadyKey(ready.substr(0, n)), std::nullopt) << n;
  }
  EXPECT_EQ(DecodeReadyKey(ready + "x"), std::nullopt);
  EXPECT_EQ(DecodeLeaseKey(std::string(19, 'x')), std::nullopt);
  EXPECT_EQ(DecodeReferralKey("1234567"), std::nullopt);
  // A queue name the server would never accept.
  EXPECT_EQ(DecodeReadyKey(EncodeReadyKey({"BAD", 3, 1, 1, 1})), std::nullopt);
}

TEST(DecodeTest, GarbageNeverCrashesAndMostlyFails) {
  std::mt19937 random(20260302);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 48);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(length(random), '\0');
    for (char& c : bytes) c = static_cast<char>(byte(random));
    // Any result is fine as long as it re-encodes to the same bytes.
    ExpectReencodes(DecodeReadyKey, EncodeReadyKey, bytes);
    ExpectReencodes(DecodeArrivalKey, EncodeArrivalKey, bytes);
    ExpectReencodes(DecodeLeaseKey, EncodeLeaseKey, bytes);
    ExpectReencodes(DecodeDeadLetterKey, EncodeDeadLetterKey, bytes);
    ExpectReencodes(DecodeOutcomeKey, EncodeOutcomeKey, bytes);
    ExpectReencodes(DecodeIdempotencyKey, EncodeIdempotencyKey, bytes);
    ExpectReencodes(DecodeChildLinkKey, EncodeChildLinkKey, bytes);
    ExpectReencodes(DecodeKnownQueueMetaKey, KnownQueueMetaKey, bytes);
    ExpectReencodes(FromHex, ToHex, bytes);
    if (auto id = ParseReferralId(bytes)) {
      EXPECT_EQ(bytes.substr(0, 4), "REF-");
    }
    ReadTime(bytes);
    ReadUint32(bytes);
  }
}

}  // namespace
}  // namespace referral::storage::keys
