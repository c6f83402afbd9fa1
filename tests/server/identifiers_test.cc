// Specification of the identifier checks: NHS number (Modulus 11), unique
// pupil number (check letter) and UK postcode format, with the worked
// examples of the domain notes (section 5).
#include "rules/identifiers.h"

#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace referral::server {
namespace {

using ::testing::Optional;

// --- NHS number -----------------------------------------------------------

class ValidNhsNumberTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ValidNhsNumberTest, PassesModulus11Check) {
  EXPECT_TRUE(IsValidNhsNumber(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(PublishedExamples, ValidNhsNumberTest,
                         ::testing::Values("9434765919", "9434765870",
                                           "4010232137", "9990000018",
                                           "9990000026", "9990000034",
                                           "9990000042", "9990000050"));

class InvalidNhsNumberTest : public ::testing::TestWithParam<std::string> {};

TEST_P(InvalidNhsNumberTest, FailsModulus11Check) {
  EXPECT_FALSE(IsValidNhsNumber(GetParam()));
}

// 999000000x: the check for stem 999000000 would be 10, which is never
// issued, so every final digit is invalid.
INSTANTIATE_TEST_SUITE_P(
    PublishedExamples, InvalidNhsNumberTest,
    ::testing::Values("9434765871", "9876544321", "9990000000", "9990000001",
                      "9990000002", "9990000003", "9990000004", "9990000005",
                      "9990000006", "9990000007", "9990000008", "9990000009"));

TEST(NhsNumberTest, SpacesAreIgnored) {
  EXPECT_TRUE(IsValidNhsNumber("943 476 5919"));
  EXPECT_TRUE(IsValidNhsNumber(" 999 000 0018 "));
}

TEST(NhsNumberTest, CheckOf11MeansZero) {
  // The stem 000000000 has weighted sum 0, so 11 - 0 = 11, which means 0.
  EXPECT_TRUE(IsValidNhsNumber("0000000000"));
  EXPECT_FALSE(IsValidNhsNumber("0000000001"));
}

TEST(NhsNumberTest, RequiresExactlyTenDigits) {
  EXPECT_FALSE(IsValidNhsNumber(""));
  EXPECT_FALSE(IsValidNhsNumber("943476591"));     // 9 digits
  EXPECT_FALSE(IsValidNhsNumber("94347659190"));   // 11 digits
  EXPECT_FALSE(IsValidNhsNumber("943-476-5919"));  // hyphens are not spaces
  EXPECT_FALSE(IsValidNhsNumber("94347659I9"));    // a letter
}

TEST(NhsNumberTest, NormaliseRemovesSpacesOnly) {
  EXPECT_EQ(NormaliseNhsNumber("943 476 5919"), "9434765919");
  EXPECT_EQ(NormaliseNhsNumber("9434765919"), "9434765919");
  EXPECT_EQ(NormaliseNhsNumber("943-476"), "943-476");
}

// --- Unique pupil number --------------------------------------------------

class ValidUpnTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ValidUpnTest, CheckLetterMatches) {
  EXPECT_TRUE(IsValidUniquePupilNumber(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(PublishedExamples, ValidUpnTest,
                         ::testing::Values("B801200005001", "A950000178301",
                                           "H243278544154",
                                           "W874200024001",    // Peterborough
                                           "G87420002400A",    // temporary
                                           "P207000016049"));  // worked

TEST(UpnTest, WrongCheckLetterIsInvalid) {
  // The worked example: the weighted sum is 266, 266 mod 23 = 13 = P.
  EXPECT_FALSE(IsValidUniquePupilNumber("B207000016049"));
  EXPECT_FALSE(IsValidUniquePupilNumber("A801200005001"));
}

TEST(UpnTest, TemporaryUpnFinalLetterIsWeighted) {
  // G87420002400A is valid; changing the final letter changes the sum.
  EXPECT_FALSE(IsValidUniquePupilNumber("G87420002400B"));
}

TEST(UpnTest, LettersIOAndSAreNeverUsed) {
  // A final I, O or S has no value in the letter map.
  EXPECT_FALSE(IsValidUniquePupilNumber("G87420002400I"));
  EXPECT_FALSE(IsValidUniquePupilNumber("G87420002400O"));
  EXPECT_FALSE(IsValidUniquePupilNumber("G87420002400S"));
}

TEST(UpnTest, RequiresThirteenCharactersOfTheRightShape) {
  EXPECT_FALSE(IsValidUniquePupilNumber(""));
  EXPECT_FALSE(IsValidUniquePupilNumber("B80120000500"));    // 12
  EXPECT_FALSE(IsValidUniquePupilNumber("B8012000050011"));  // 14
  EXPECT_FALSE(IsValidUniquePupilNumber("b801200005001"));   // lower case
  EXPECT_FALSE(IsValidUniquePupilNumber("B8012A0005001"));   // letter inside
  EXPECT_FALSE(IsValidUniquePupilNumber("1801200005001"));   // no letter
}

// --- Postcode -------------------------------------------------------------

TEST(PostcodeTest, NormalisesCaseAndSpacing) {
  EXPECT_THAT(NormalisePostcode("PE1 2AB"), Optional(std::string("PE1 2AB")));
  EXPECT_THAT(NormalisePostcode("pe12ab"), Optional(std::string("PE1 2AB")));
  EXPECT_THAT(NormalisePostcode("  pe1   2ab "),
              Optional(std::string("PE1 2AB")));
  EXPECT_THAT(NormalisePostcode("Pe 12aB"), Optional(std::string("PE1 2AB")));
}

TEST(PostcodeTest, AcceptsEveryOutwardPattern) {
  EXPECT_THAT(NormalisePostcode("M1 1AE"), Optional(std::string("M1 1AE")));
  EXPECT_THAT(NormalisePostcode("B33 8TH"), Optional(std::string("B33 8TH")));
  EXPECT_THAT(NormalisePostcode("CR2 6XH"), Optional(std::string("CR2 6XH")));
  EXPECT_THAT(NormalisePostcode("DN55 1PT"), Optional(std::string("DN55 1PT")));
  EXPECT_THAT(NormalisePostcode("W1A 0AX"), Optional(std::string("W1A 0AX")));
  EXPECT_THAT(NormalisePostcode("EC1A 1BB"), Optional(std::string("EC1A 1BB")));
}

TEST(PostcodeTest, AcceptsGirobank) {
  EXPECT_THAT(NormalisePostcode("gir0aa"), Optional(std::string("GIR 0AA")));
}

TEST(PostcodeTest, RejectsWrongShapes) {
  EXPECT_EQ(NormalisePostcode(""), std::nullopt);
  EXPECT_EQ(NormalisePostcode("PE1"), std::nullopt);        // no inward code
  EXPECT_EQ(NormalisePostcode("PE1 2A"), std::nullopt);     // short inward
  EXPECT_EQ(NormalisePostcode("PE1 ABC"), std::nullopt);    // inward no digit
  EXPECT_EQ(NormalisePostcode("PE1 22B"), std::nullopt);    // inward 2 digits
  EXPECT_EQ(NormalisePostcode("1E1 2AB"), std::nullopt);    // starts with digit
  EXPECT_EQ(NormalisePostcode("PEE1 2AB"), std::nullopt);   // AAAN
  EXPECT_EQ(NormalisePostcode("PE123 2AB"), std::nullopt);  // 5 outward
  EXPECT_EQ(NormalisePostcode("P 2AB"), std::nullopt);      // 1 outward
  EXPECT_EQ(NormalisePostcode("PE1-2AB"), std::nullopt);    // punctuation
  EXPECT_EQ(NormalisePostcode("GIR 0AB"), std::nullopt);    // only GIR 0AA
}

TEST(PostcodeTest, FirstLetterNeverQVOrX) {
  EXPECT_EQ(NormalisePostcode("QE1 2AB"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("V1 2AB"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("X1 2AB"), std::nullopt);
}

TEST(PostcodeTest, SecondLetterNeverIJOrZ) {
  EXPECT_EQ(NormalisePostcode("PI1 2AB"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("PJ1 2AB"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("PZ1 2AB"), std::nullopt);
}

TEST(PostcodeTest, AnaThirdLetterFromAllowedSet) {
  EXPECT_NE(NormalisePostcode("W1A 0AX"), std::nullopt);
  EXPECT_NE(NormalisePostcode("W1W 0AX"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("W1I 0AX"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("W1L 0AX"), std::nullopt);
}

TEST(PostcodeTest, AanaFourthLetterFromAllowedSet) {
  EXPECT_NE(NormalisePostcode("EC1A 1BB"), std::nullopt);
  EXPECT_NE(NormalisePostcode("SW1Y 1BB"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("EC1C 1BB"), std::nullopt);
  EXPECT_EQ(NormalisePostcode("EC1D 1BB"), std::nullopt);
}

TEST(PostcodeTest, InwardLettersNeverCIKMOOrV) {
  for (char bad : std::string("CIKMOV")) {
    EXPECT_EQ(NormalisePostcode(std::string("PE1 2A") + bad), std::nullopt)
        << bad;
    EXPECT_EQ(NormalisePostcode(std::string("PE1 2") + bad + "B"), std::nullopt)
        << bad;
  }
}

TEST(PostcodeTest, OutwardCodesFollowTheSixFormats) {
  for (const char* district :
       {"M1", "B33", "CR2", "PE1", "PE29", "W1A", "EC1A", "SW1W", "DN55"}) {
    EXPECT_TRUE(IsValidOutwardCode(district)) << district;
  }
}

TEST(PostcodeTest, OutwardCodesKeepThePositionalLetterRules) {
  for (const char* bad :
       {"", "P", "PE", "1E1", "PE1AA", "PE123", "QE1", "VE1", "XE1", "PI1",
        "PJ1", "PZ1", "W1I", "EC1C", "pe1", "PE1 ", "GIR"}) {
    EXPECT_FALSE(IsValidOutwardCode(bad)) << '"' << bad << '"';
  }
}

TEST(PostcodeTest, DistrictIsTheOutwardCode) {
  EXPECT_EQ(PostcodeDistrict("PE1 2AB"), "PE1");
  EXPECT_EQ(PostcodeDistrict("PE29 3AB"), "PE29");
  EXPECT_EQ(PostcodeDistrict("EC1A 1BB"), "EC1A");
  EXPECT_EQ(PostcodeDistrict("pe12ab"), "PE1");  // normalised on the way
  EXPECT_EQ(PostcodeDistrict("not a postcode"), "");
}

}  // namespace
}  // namespace referral::server
