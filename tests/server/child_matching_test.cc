// Specification of the keys that link referrals about the same child
// (repeated concerns): NHS number first, otherwise normalised name and date
// of birth, and no key at all rather than a weak one.
#include "rules/child_matching.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "referral/v1/referral.pb.h"

namespace referral::server {
namespace {

using ::referral::v1::Child;
using ::referral::v1::Referral;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

Child NamedChild(const std::string& given, const std::string& family, int year,
                 int month, int day) {
  Child child;
  child.set_given_name(given);
  child.set_family_name(family);
  child.mutable_date_of_birth()->set_year(year);
  child.mutable_date_of_birth()->set_month(month);
  child.mutable_date_of_birth()->set_day(day);
  return child;
}

TEST(ChildMatchKeysTest, NhsNumberIsPreferred) {
  Referral referral;
  Child& child = *referral.add_children() =
      NamedChild("Testy", "Examplechild", 2018, 3, 14);
  child.set_nhs_number("999 000 0018");
  EXPECT_THAT(ChildMatchKeys(referral),
              ElementsAre(ChildKey{0, "nhs:9990000018", "nhs_number"}));
}

TEST(ChildMatchKeysTest, NameAndDateOfBirthWithoutAValidNhsNumber) {
  Referral referral;
  Child& child = *referral.add_children() =
      NamedChild("Testy", "Examplechild", 2018, 3, 4);
  EXPECT_THAT(ChildMatchKeys(referral),
              ElementsAre(ChildKey{0, "nd:examplechild|testy|2018-03-04",
                                   "name_and_date_of_birth"}));
  // A mistyped NHS number must not become a key that links nobody.
  child.set_nhs_number("9434765871");
  EXPECT_THAT(ChildMatchKeys(referral),
              ElementsAre(ChildKey{0, "nd:examplechild|testy|2018-03-04",
                                   "name_and_date_of_birth"}));
}

TEST(ChildMatchKeysTest, SiblingsGetSeparateKeys) {
  Referral referral;
  *referral.add_children() = NamedChild("Testy", "Examplechild", 2016, 5, 1);
  *referral.add_children() = NamedChild("Trial", "Examplechild", 2019, 9, 12);
  referral.mutable_children(1)->set_nhs_number("9990000026");
  EXPECT_THAT(ChildMatchKeys(referral),
              ElementsAre(ChildKey{0, "nd:examplechild|testy|2016-05-01",
                                   "name_and_date_of_birth"},
                          ChildKey{1, "nhs:9990000026", "nhs_number"}));
}

TEST(ChildMatchKeysTest, TwinsDifferByGivenName) {
  Referral referral;
  *referral.add_children() = NamedChild("Ann", "Twinfixture", 2020, 1, 1);
  *referral.add_children() = NamedChild("Bea", "Twinfixture", 2020, 1, 1);
  const auto keys = ChildMatchKeys(referral);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_NE(keys[0].key, keys[1].key);
}

TEST(ChildMatchKeysTest, SpellingVariantsFromDifferentAgenciesMatch) {
  Referral police;
  *police.add_children() = NamedChild("Zoë", "O'Neil-Smith", 2017, 6, 30);
  Referral school;
  *school.add_children() = NamedChild("  ZOE ", "o’neil smith", 2017, 6, 30);
  EXPECT_EQ(ChildMatchKeys(police), ChildMatchKeys(school));
  EXPECT_EQ(ChildMatchKeys(police)[0].key, "nd:oneilsmith|zoe|2017-06-30");
}

TEST(ChildMatchKeysTest, NoKeyWithoutEnoughToMatch) {
  Referral referral;
  // Unborn: no date of birth, no name yet.
  Child& unborn = *referral.add_children();
  unborn.mutable_expected_due_date()->set_year(2027);
  unborn.mutable_expected_due_date()->set_month(2);
  unborn.mutable_expected_due_date()->set_day(1);
  // Family name only.
  *referral.add_children() = NamedChild("", "Examplechild", 2018, 1, 1);
  // Names only (all-zero date counts as absent).
  *referral.add_children() = NamedChild("Testy", "Examplechild", 0, 0, 0);
  // Not a real date.
  *referral.add_children() = NamedChild("Testy", "Examplechild", 2018, 2, 30);
  // A name made only of punctuation normalises to nothing.
  *referral.add_children() = NamedChild("-", "Examplechild", 2018, 1, 1);
  EXPECT_THAT(ChildMatchKeys(referral), IsEmpty());

  // The child index still points at the right child when others have none.
  *referral.add_children() = NamedChild("Testy", "Examplechild", 2018, 1, 1);
  EXPECT_THAT(ChildMatchKeys(referral),
              ElementsAre(ChildKey{5, "nd:examplechild|testy|2018-01-01",
                                   "name_and_date_of_birth"}));
}

TEST(AllChildMatchKeysTest, BothKeysWhenBothAreAvailable) {
  // An earlier referral may have lacked the NHS number, or the number may
  // have changed on adoption: looking up by both keys still links them.
  Referral referral;
  *referral.add_children() = NamedChild("Testy", "Examplechild", 2018, 3, 14);
  referral.mutable_children(0)->set_nhs_number("9990000018");
  *referral.add_children() = NamedChild("Trial", "Examplechild", 2019, 1, 2);
  EXPECT_THAT(AllChildMatchKeys(referral),
              ElementsAre(ChildKey{0, "nhs:9990000018", "nhs_number"},
                          ChildKey{0, "nd:examplechild|testy|2018-03-14",
                                   "name_and_date_of_birth"},
                          ChildKey{1, "nd:examplechild|trial|2019-01-02",
                                   "name_and_date_of_birth"}));
}

TEST(NormaliseNameForMatchingTest, CaseFoldsAndRemovesAccents) {
  EXPECT_EQ(NormaliseNameForMatching("TESTY"), "testy");
  EXPECT_EQ(NormaliseNameForMatching("Zoë"), "zoe");
  EXPECT_EQ(NormaliseNameForMatching("Zoe\xCC\x88"), "zoe");  // e + U+0308
  EXPECT_EQ(NormaliseNameForMatching("Łukasz Wójcik"), "lukaszwojcik");
  EXPECT_EQ(NormaliseNameForMatching("Straße"), "strasse");
  EXPECT_EQ(NormaliseNameForMatching("Ægir Øster"), "aegiroster");
  EXPECT_EQ(NormaliseNameForMatching("Şükrü Çelik"), "sukrucelik");
  EXPECT_EQ(NormaliseNameForMatching("Siân Ŵyn"), "sianwyn");
}

TEST(NormaliseNameForMatchingTest, RemovesSpacesAndPunctuation) {
  EXPECT_EQ(NormaliseNameForMatching("Mary-Jane"), "maryjane");
  EXPECT_EQ(NormaliseNameForMatching("Mary Jane"), "maryjane");
  EXPECT_EQ(NormaliseNameForMatching("D'Souza"), "dsouza");
  EXPECT_EQ(NormaliseNameForMatching("D’Souza"), "dsouza");  // U+2019
  EXPECT_EQ(NormaliseNameForMatching("St. John\xC2\xA0Smythe"),
            "stjohnsmythe");                                         // NBSP
  EXPECT_EQ(NormaliseNameForMatching("Smith–Jones"), "smithjones");  // en dash
  EXPECT_EQ(NormaliseNameForMatching(" \t"), "");
}

TEST(NormaliseNameForMatchingTest, KeepsOtherScriptsLowerCased) {
  EXPECT_EQ(NormaliseNameForMatching("ИВАН"), "иван");
  EXPECT_EQ(NormaliseNameForMatching("Иван"), "иван");
  EXPECT_EQ(NormaliseNameForMatching("ΑΝΝΑ"), "αννα");
  EXPECT_EQ(NormaliseNameForMatching("محمد"), "محمد");
}

TEST(NormaliseNameForMatchingTest, DropsInvalidUtf8) {
  EXPECT_EQ(NormaliseNameForMatching("Te\xFFsty"), "testy");
  EXPECT_EQ(NormaliseNameForMatching("Testy\xC3"), "testy");
}

}  // namespace
}  // namespace referral::server
