// Specification of hex text: lower-case encoding, strict decoding.
#include "base/hex.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace referral {
namespace {

TEST(HexTest, EncodesTwoLowerCaseDigitsPerByte) {
  EXPECT_EQ(BytesToHex(std::string("\x00\x9f\xff", 3)), "009fff");
  EXPECT_EQ(BytesToHex(""), "");
}

TEST(HexTest, DecodesEitherCaseByDefault) {
  EXPECT_EQ(HexToBytes("009fFF"), std::string("\x00\x9f\xff", 3));
}

TEST(HexTest, RefusesOddLengthsAndNonDigits) {
  EXPECT_EQ(HexToBytes("abc"), std::nullopt);
  EXPECT_EQ(HexToBytes("zz"), std::nullopt);
  EXPECT_EQ(HexToBytes("0g"), std::nullopt);
}

TEST(HexTest, LowerOnlyRefusesUpperCase) {
  EXPECT_EQ(HexToBytes("ab", HexCase::kLowerOnly), std::string("\xab"));
  EXPECT_EQ(HexToBytes("AB", HexCase::kLowerOnly), std::nullopt);
}

TEST(HexTest, RoundTrips) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(HexToBytes(BytesToHex(all)), all);
}

}  // namespace
}  // namespace referral
