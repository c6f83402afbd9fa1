// Specification of strict UTF-8: what decodes, what is rejected (overlong
// forms, surrogates, values above U+10FFFF, stray and truncated bytes), how
// decoding resynchronises after a bad byte, and that encoding round-trips.
#include "base/utf8.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace referral {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

// Every decode result of `s` in order: a code point, or -1 for a bad byte.
std::vector<long> DecodeAll(std::string_view s) {
  std::vector<long> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    const std::optional<char32_t> cp = DecodeUtf8(s, &pos);
    out.push_back(cp.has_value() ? static_cast<long>(*cp) : -1);
  }
  return out;
}

TEST(Utf8DecodeTest, DecodesOneToFourByteForms) {
  EXPECT_THAT(DecodeAll("a"), ElementsAre(0x61));
  EXPECT_THAT(DecodeAll("\xC3\xAB"), ElementsAre(0xEB));             // ë
  EXPECT_THAT(DecodeAll("\xE2\x80\x99"), ElementsAre(0x2019));       // ’
  EXPECT_THAT(DecodeAll("\xF0\x9F\x98\x80"), ElementsAre(0x1F600));  // 😀
  EXPECT_THAT(DecodeAll("Zo\xC3\xAB"), ElementsAre('Z', 'o', 0xEB));
}

TEST(Utf8DecodeTest, DecodesTheBoundaries) {
  EXPECT_THAT(DecodeAll(std::string_view("\0", 1)), ElementsAre(0));
  EXPECT_THAT(DecodeAll("\x7F"), ElementsAre(0x7F));
  EXPECT_THAT(DecodeAll("\xC2\x80"), ElementsAre(0x80));
  EXPECT_THAT(DecodeAll("\xDF\xBF"), ElementsAre(0x7FF));
  EXPECT_THAT(DecodeAll("\xE0\xA0\x80"), ElementsAre(0x800));
  EXPECT_THAT(DecodeAll("\xED\x9F\xBF"), ElementsAre(0xD7FF));
  EXPECT_THAT(DecodeAll("\xEE\x80\x80"), ElementsAre(0xE000));
  EXPECT_THAT(DecodeAll("\xEF\xBF\xBF"), ElementsAre(0xFFFF));
  EXPECT_THAT(DecodeAll("\xF0\x90\x80\x80"), ElementsAre(0x10000));
  EXPECT_THAT(DecodeAll("\xF4\x8F\xBF\xBF"), ElementsAre(0x10FFFF));
}

TEST(Utf8DecodeTest, AdvancesPastTheCodePoint) {
  const std::string_view s = "\xE2\x80\x99x";
  std::size_t pos = 0;
  EXPECT_THAT(DecodeUtf8(s, &pos), Optional(char32_t{0x2019}));
  EXPECT_EQ(pos, 3u);
  EXPECT_THAT(DecodeUtf8(s, &pos), Optional(char32_t{'x'}));
  EXPECT_EQ(pos, 4u);
}

TEST(Utf8DecodeTest, RejectsOverlongForms) {
  // "/" and NUL written long, which byte-level checks would miss.
  EXPECT_EQ(DecodeAll("\xC0\xAF")[0], -1);
  EXPECT_EQ(DecodeAll("\xC1\xBF")[0], -1);
  EXPECT_EQ(DecodeAll("\xE0\x80\xAF")[0], -1);
  EXPECT_EQ(DecodeAll("\xE0\x9F\xBF")[0], -1);
  EXPECT_EQ(DecodeAll("\xF0\x80\x80\xAF")[0], -1);
  EXPECT_EQ(DecodeAll("\xF0\x8F\xBF\xBF")[0], -1);
}

TEST(Utf8DecodeTest, RejectsSurrogatesAndValuesAboveTheUnicodeRange) {
  EXPECT_EQ(DecodeAll("\xED\xA0\x80")[0], -1);          // U+D800
  EXPECT_EQ(DecodeAll("\xED\xBF\xBF")[0], -1);          // U+DFFF
  EXPECT_EQ(DecodeAll("\xF4\x90\x80\x80")[0], -1);      // U+110000
  EXPECT_EQ(DecodeAll("\xF8\x88\x80\x80\x80")[0], -1);  // 5-byte form
  EXPECT_EQ(DecodeAll("\xFF")[0], -1);
}

TEST(Utf8DecodeTest, BadBytesAreSkippedOneAtATime) {
  // A stray continuation byte, then a lead byte whose sequence is cut short
  // by a letter: the letter survives.
  EXPECT_THAT(DecodeAll("\x80"
                        "a\xC3"
                        "b"),
              ElementsAre(-1, 'a', -1, 'b'));
  // Truncated at the end of the string.
  EXPECT_THAT(DecodeAll("a\xE2\x80"), ElementsAre('a', -1, -1));
}

TEST(Utf8ValidTest, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ASCII"));
  EXPECT_TRUE(IsValidUtf8("Łukasz Wójcik, Siân, Иван, محمد, \xF0\x9F\x98\x80"));
}

TEST(Utf8ValidTest, RejectsAnyBadSequence) {
  EXPECT_FALSE(IsValidUtf8("Te\xFFsty"));
  EXPECT_FALSE(IsValidUtf8("Testy\xC3"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));
  EXPECT_FALSE(IsValidUtf8("a\xED\xA0\x80z"));
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));
}

// ASCII is checked eight bytes at a time: a bad byte or a character split
// across a word boundary must be found wherever it falls.
TEST(Utf8ValidTest, FindsABadByteAtEveryPositionOfALongAsciiRun) {
  const std::string ascii(40, 'a');
  for (size_t at = 0; at < ascii.size(); ++at) {
    std::string text = ascii;
    text[at] = '\xFF';
    EXPECT_FALSE(IsValidUtf8(text)) << "bad byte at " << at;
    text = ascii;
    text[at] = '\xC3';  // a lead byte whose continuation is missing
    EXPECT_FALSE(IsValidUtf8(text)) << "cut character at " << at;
  }
}

TEST(Utf8ValidTest, AcceptsAMultiByteCharacterAtEveryPosition) {
  const std::string ascii(40, 'a');
  for (size_t at = 0; at <= ascii.size(); ++at) {
    std::string text = ascii;
    text.insert(at, "\xE2\x82\xAC");  // U+20AC across every word boundary
    EXPECT_TRUE(IsValidUtf8(text)) << "euro sign at " << at;
  }
}

TEST(Utf8AppendTest, RoundTripsEveryLength) {
  for (char32_t cp :
       {char32_t{0}, char32_t{0x41}, char32_t{0x7F}, char32_t{0x80},
        char32_t{0xEB}, char32_t{0x7FF}, char32_t{0x800}, char32_t{0x2019},
        char32_t{0xD7FF}, char32_t{0xE000}, char32_t{0xFFFF}, char32_t{0x10000},
        char32_t{0x1F600}, char32_t{0x10FFFF}}) {
    std::string encoded;
    AppendUtf8(cp, &encoded);
    std::size_t pos = 0;
    EXPECT_THAT(DecodeUtf8(encoded, &pos), Optional(cp))
        << static_cast<long>(cp);
    EXPECT_EQ(pos, encoded.size()) << static_cast<long>(cp);
  }
}

TEST(Utf8AppendTest, AppendsToWhatIsThere) {
  std::string out = "Zo";
  AppendUtf8(0xEB, &out);
  EXPECT_EQ(out, "Zo\xC3\xAB");
}

}  // namespace
}  // namespace referral
