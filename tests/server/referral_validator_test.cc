// Specification of intake validation. Each test starts from a valid,
// fictitious referral, breaks one thing, and names the exact violation the
// agency gets back ("field.path: reason"). Dates are judged against a fixed
// "now" so the tests do not age.
#include "rules/referral_validator.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "referral/v1/broker.pb.h"
#include "referral/v1/referral.pb.h"

namespace referral::server {
namespace {

using ::referral::v1::Address;
using ::referral::v1::CalendarDate;
using ::referral::v1::Child;
using ::referral::v1::Person;
using ::referral::v1::Referral;
using ::referral::v1::SubmitReferralRequest;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Optional;
using ::testing::SizeIs;

// Monday 23 November 2026, noon. London is on GMT, so UTC and London agree.
const absl::Time kNow = absl::FromCivil(
    absl::CivilSecond(2026, 11, 23, 12, 0, 0), absl::UTCTimeZone());

CalendarDate Date(int year, int month, int day) {
  CalendarDate date;
  date.set_year(year);
  date.set_month(month);
  date.set_day(day);
  return date;
}

// A fictitious child: test-range NHS number, Peterborough-style UPN.
Child ValidChild() {
  Child child;
  child.set_given_name("Testy");
  child.set_family_name("Examplechild");
  *child.mutable_date_of_birth() = Date(2018, 3, 14);
  child.set_sex(referral::v1::SEX_MALE);
  child.set_nhs_number("999 000 0018");
  child.set_unique_pupil_number("W874200024001");
  child.mutable_address()->add_lines("1 Fictional Row");
  child.mutable_address()->set_town("Peterborough");
  child.mutable_address()->set_postcode("PE1 2AB");
  return child;
}

Child UnbornChild() {
  Child child;
  *child.mutable_expected_due_date() = Date(2027, 2, 1);
  child.set_sex(referral::v1::SEX_UNKNOWN);
  return child;
}

Person ValidPerson() {
  Person person;
  person.set_given_name("Parent");
  person.set_family_name("Examplechild");
  person.set_relationship("mother");
  *person.mutable_date_of_birth() = Date(1990, 6, 1);
  return person;
}

SubmitReferralRequest ValidRequest() {
  SubmitReferralRequest request;
  request.set_idempotency_key("cambs-police/INC-0001");
  Referral& referral = *request.mutable_referral();
  referral.mutable_referrer()->set_agency_type(
      referral::v1::AGENCY_TYPE_POLICE);
  referral.mutable_referrer()->set_agency_id("cambs-police");
  referral.mutable_referrer()->set_name("PC Fictional Officer");
  *referral.add_children() = ValidChild();
  *referral.add_household_members() = ValidPerson();
  referral.add_concerns(referral::v1::CONCERN_CATEGORY_DOMESTIC_ABUSE);
  referral.set_description("A fictitious incident for testing.");
  referral.mutable_child_voice()->set_words("I want it to stop.");
  referral.mutable_consent()->set_status(
      referral::v1::CONSENT_STATUS_NOT_SOUGHT);
  referral.mutable_consent()->set_reason_shared_without_consent(
      "Seeking consent could increase the risk to the children.");
  referral.add_cin_factor_codes("3A");
  return request;
}

// The violations, one string each; empty when the request is valid.
std::vector<std::string> Violations(const SubmitReferralRequest& request,
                                    absl::Time now = kNow) {
  const absl::Status status = ValidateSubmitReferralRequest(request, now);
  if (status.ok()) return {};
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  return absl::StrSplit(status.message(), "; ");
}

std::string Repeat(std::string_view piece, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out.append(piece);
  return out;
}

TEST(ValidateSubmitReferralRequestTest, ValidReferralPasses) {
  EXPECT_THAT(Violations(ValidRequest()), IsEmpty());
}

TEST(ValidateSubmitReferralRequestTest, ReferralIsRequired) {
  SubmitReferralRequest request = ValidRequest();
  request.clear_referral();
  EXPECT_THAT(Violations(request), ElementsAre("referral: is required"));
}

TEST(ValidateSubmitReferralRequestTest, ListsEveryViolation) {
  SubmitReferralRequest request = ValidRequest();
  request.clear_idempotency_key();
  Referral& referral = *request.mutable_referral();
  *referral.add_children() = ValidChild();
  referral.mutable_children(1)->set_nhs_number("9434765871");
  referral.clear_concerns();
  referral.set_description("   ");
  EXPECT_THAT(Violations(request),
              AllOf(SizeIs(4), Contains("idempotency_key: is required"),
                    Contains("referral.children[1].nhs_number: check digit "
                             "is wrong"),
                    Contains("referral.concerns: at least one concern is "
                             "required"),
                    Contains("referral.description: is required")));
}

// --- Messages never carry personal data ----------------------------------

TEST(ValidateSubmitReferralRequestTest, MessagesNeverQuoteTheValues) {
  SubmitReferralRequest request = ValidRequest();
  Child& child = *request.mutable_referral()->mutable_children(0);
  child.set_given_name("Zebedee" + std::string(100, 'q'));
  child.set_family_name("Quuxworthy" + std::string(100, 'q'));
  child.set_nhs_number("9434765871");
  child.set_unique_pupil_number("B207000016049");
  child.mutable_address()->set_postcode("PE99 9CC");
  child.mutable_address()->set_town("Nowhereton" + std::string(80, 'q'));
  *child.mutable_date_of_birth() = Date(2030, 1, 1);
  request.mutable_referral()->set_referrer_reference("SECRET-REF-" +
                                                     std::string(64, '9'));
  request.set_idempotency_key("key\twith tab");

  const absl::Status status = ValidateSubmitReferralRequest(request, kNow);
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  for (const char* personal : {"Zebedee", "Quuxworthy", "qqq", "9434765871",
                               "943 476", "B207000016049", "PE99", "9CC",
                               "Nowhereton", "2030", "SECRET", "with tab"}) {
    EXPECT_THAT(message, Not(HasSubstr(personal)));
  }
  // ...while still naming every offending field.
  EXPECT_THAT(Violations(request), SizeIs(9));
}

// --- Idempotency key -----------------------------------------------------

TEST(IdempotencyKeyTest, RequiredPrintableAsciiUpTo128Bytes) {
  SubmitReferralRequest request = ValidRequest();
  request.set_idempotency_key(std::string(128, 'k'));
  EXPECT_THAT(Violations(request), IsEmpty());
  request.set_idempotency_key("with space and ~!@#");
  EXPECT_THAT(Violations(request), IsEmpty());

  request.set_idempotency_key("");
  EXPECT_THAT(Violations(request), ElementsAre("idempotency_key: is required"));
  request.set_idempotency_key(std::string(129, 'k'));
  EXPECT_THAT(Violations(request),
              ElementsAre("idempotency_key: must be at most 128 bytes"));
  request.set_idempotency_key("tab\tkey");
  EXPECT_THAT(Violations(request),
              ElementsAre("idempotency_key: must be printable ASCII"));
  request.set_idempotency_key("caf\xC3\xA9");
  EXPECT_THAT(Violations(request),
              ElementsAre("idempotency_key: must be printable ASCII"));
}

// --- Referrer -------------------------------------------------------------

TEST(ReferrerTest, IsRequired) {
  SubmitReferralRequest request = ValidRequest();
  request.mutable_referral()->clear_referrer();
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.referrer: is required"));
}

TEST(ReferrerTest, AgencyTypeIsRequiredAndKnown) {
  SubmitReferralRequest request = ValidRequest();
  auto* referrer = request.mutable_referral()->mutable_referrer();
  referrer->set_agency_type(referral::v1::AGENCY_TYPE_UNSPECIFIED);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.referrer.agency_type: is required"));
  referrer->set_agency_type(static_cast<referral::v1::AgencyType>(99));
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.referrer.agency_type: is not a known "
                          "value"));
}

TEST(ReferrerTest, AgencyIdIsLowerCaseDigitsAndHyphensUpTo64) {
  SubmitReferralRequest request = ValidRequest();
  auto* referrer = request.mutable_referral()->mutable_referrer();
  referrer->set_agency_id(std::string(64, 'a'));
  EXPECT_THAT(Violations(request), IsEmpty());
  referrer->set_agency_id("peterborough-school-1");
  EXPECT_THAT(Violations(request), IsEmpty());

  referrer->clear_agency_id();
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.referrer.agency_id: is required"));
  const std::string format =
      "referral.referrer.agency_id: must be 1 to 64 characters from a-z, 0-9 "
      "and '-'";
  for (const std::string& bad :
       {std::string(65, 'a'), std::string("Cambs-Police"),
        std::string("cambs_police"), std::string(" cambs-police")}) {
    referrer->set_agency_id(bad);
    EXPECT_THAT(Violations(request), ElementsAre(format)) << bad;
  }
}

// --- Children ------------------------------------------------------------

TEST(ChildrenTest, OneToTen) {
  SubmitReferralRequest request = ValidRequest();
  Referral& referral = *request.mutable_referral();
  referral.clear_children();
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children: at least one child is required"));
  for (int i = 0; i < 10; ++i) *referral.add_children() = ValidChild();
  EXPECT_THAT(Violations(request), IsEmpty());
  *referral.add_children() = ValidChild();
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children: at most 10 children"));
}

TEST(ChildrenTest, SexIsRequiredAndKnown) {
  SubmitReferralRequest request = ValidRequest();
  Child& child = *request.mutable_referral()->mutable_children(0);
  child.set_sex(referral::v1::SEX_UNSPECIFIED);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].sex: is required"));
  child.set_sex(static_cast<referral::v1::Sex>(7));
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].sex: is not a known value"));
}

TEST(ChildrenTest, FamilyNameRequiredUnlessUnborn) {
  SubmitReferralRequest request = ValidRequest();
  Referral& referral = *request.mutable_referral();
  referral.mutable_children(0)->set_family_name(" \t");
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].family_name: is required "
                          "unless the child is unborn"));
  *referral.mutable_children(0) = UnbornChild();
  EXPECT_THAT(Violations(request), IsEmpty());
}

TEST(ChildrenTest, GivenNameIsOptional) {
  // A baby may not be named yet when the hospital refers.
  SubmitReferralRequest request = ValidRequest();
  request.mutable_referral()->mutable_children(0)->clear_given_name();
  EXPECT_THAT(Violations(request), IsEmpty());
}

// --- NHS number, UPN, postcode -------------------------------------------

TEST(NhsNumberFieldTest, CheckDigitAndFormat) {
  SubmitReferralRequest request = ValidRequest();
  Referral& referral = *request.mutable_referral();
  *referral.add_children() = ValidChild();
  Child& second = *referral.mutable_children(1);

  second.set_nhs_number("9434765919");
  EXPECT_THAT(Violations(request), IsEmpty());
  second.set_nhs_number(" 943 476 5919 ");
  EXPECT_THAT(Violations(request), IsEmpty());
  second.clear_nhs_number();  // optional
  EXPECT_THAT(Violations(request), IsEmpty());

  second.set_nhs_number("9434765871");
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[1].nhs_number: check digit is "
                          "wrong"));
  second.set_nhs_number("9990000000");  // check would be 10: never issued
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[1].nhs_number: check digit is "
                          "wrong"));
  second.set_nhs_number("943-476-5919");
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[1].nhs_number: must be 10 digits "
                          "(spaces allowed)"));
}

TEST(UpnFieldTest, CheckLetterAndFormat) {
  SubmitReferralRequest request = ValidRequest();
  Child& child = *request.mutable_referral()->mutable_children(0);
  child.set_unique_pupil_number("G87420002400A");  // temporary
  EXPECT_THAT(Violations(request), IsEmpty());
  child.clear_unique_pupil_number();
  EXPECT_THAT(Violations(request), IsEmpty());

  child.set_unique_pupil_number("B207000016049");
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].unique_pupil_number: check "
                          "letter is wrong"));
  child.set_unique_pupil_number("W87420002400");
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].unique_pupil_number: must be "
                          "13 characters"));
  child.set_unique_pupil_number("W8742000240-1");
  EXPECT_THAT(Violations(request),
              ElementsAre(HasSubstr("referral.children[0].unique_pupil_number: "
                                    "must be an upper-case check letter")));
}

TEST(PostcodeFieldTest, UkFormatWhenGiven) {
  SubmitReferralRequest request = ValidRequest();
  Referral& referral = *request.mutable_referral();
  Address& address = *referral.mutable_children(0)->mutable_address();
  address.set_postcode("pe12ab");
  EXPECT_THAT(Violations(request), IsEmpty());
  address.clear_postcode();  // a partial address is still useful
  EXPECT_THAT(Violations(request), IsEmpty());

  address.set_postcode("PE1 2CI");
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].address.postcode: is not a "
                          "valid UK postcode"));
  referral.mutable_household_members(0)->mutable_address()->set_postcode("X");
  EXPECT_THAT(Violations(request),
              Contains("referral.household_members[0].address.postcode: is "
                       "not a valid UK postcode"));
}

// --- Dates ---------------------------------------------------------------

TEST(DateOfBirthTest, MustBeARealDate) {
  SubmitReferralRequest request = ValidRequest();
  Child& child = *request.mutable_referral()->mutable_children(0);
  *child.mutable_date_of_birth() = Date(2016, 2, 29);  // a leap day
  EXPECT_THAT(Violations(request), IsEmpty());

  *child.mutable_date_of_birth() = Date(2018, 2, 30);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].date_of_birth.day: is not a "
                          "day of the given month"));
  *child.mutable_date_of_birth() = Date(2017, 2, 29);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].date_of_birth.day: is not a "
                          "day of the given month"));
  *child.mutable_date_of_birth() = Date(2018, 13, 1);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].date_of_birth.month: must be "
                          "between 1 and 12"));
  *child.mutable_date_of_birth() = Date(2018, 4, 0);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].date_of_birth.day: is not a "
                          "day of the given month"));
  *child.mutable_date_of_birth() = Date(1899, 4, 1);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].date_of_birth.year: must be "
                          "between 1900 and 2200"));
}

TEST(DateOfBirthTest, NotInTheFuture) {
  SubmitReferralRequest request = ValidRequest();
  Child& child = *request.mutable_referral()->mutable_children(0);
  *child.mutable_date_of_birth() = Date(2026, 11, 23);  // born today
  EXPECT_THAT(Violations(request), IsEmpty());
  *child.mutable_date_of_birth() = Date(2026, 11, 24);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].date_of_birth: is in the "
                          "future"));
}

TEST(DateOfBirthTest, TodayIsTheDateInLondon) {
  // 23:30 UTC on 14 July is 00:30 BST on 15 July: a baby born on 15 July
  // (London) has been born already.
  const absl::Time summer_night = absl::FromCivil(
      absl::CivilSecond(2026, 7, 14, 23, 30, 0), absl::UTCTimeZone());
  SubmitReferralRequest request = ValidRequest();
  *request.mutable_referral()->mutable_children(0)->mutable_date_of_birth() =
      Date(2026, 7, 15);
  EXPECT_THAT(Violations(request, summer_night), IsEmpty());
}

TEST(DateOfBirthTest, UnderEighteen) {
  SubmitReferralRequest request = ValidRequest();
  Child& child = *request.mutable_referral()->mutable_children(0);
  *child.mutable_date_of_birth() = Date(2008, 11, 24);  // 18 tomorrow
  EXPECT_THAT(Violations(request), IsEmpty());
  *child.mutable_date_of_birth() = Date(2008, 11, 23);  // 18 today
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].date_of_birth: the child must "
                          "be under 18 (under 25 for a care leaver)"));
}

TEST(DateOfBirthTest, UnderTwentyFiveForACareLeaver) {
  SubmitReferralRequest request = ValidRequest();
  Child& child = *request.mutable_referral()->mutable_children(0);
  child.set_care_leaver(true);
  *child.mutable_date_of_birth() = Date(2001, 11, 24);  // 25 tomorrow
  EXPECT_THAT(Violations(request), IsEmpty());
  *child.mutable_date_of_birth() = Date(2001, 11, 23);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].date_of_birth: a care leaver "
                          "must be under 25"));
}

TEST(DateOfBirthTest, LeapDayBabyComesOfAgeOnFirstMarch) {
  SubmitReferralRequest request = ValidRequest();
  *request.mutable_referral()->mutable_children(0)->mutable_date_of_birth() =
      Date(2008, 2, 29);
  const absl::Time feb28 =
      absl::FromCivil(absl::CivilSecond(2026, 2, 28, 12), absl::UTCTimeZone());
  const absl::Time mar1 =
      absl::FromCivil(absl::CivilSecond(2026, 3, 1, 12), absl::UTCTimeZone());
  EXPECT_THAT(Violations(request, feb28), IsEmpty());
  EXPECT_THAT(Violations(request, mar1), SizeIs(1));
}

TEST(ChildDatesTest, ExactlyOneOfBirthOrDueDate) {
  SubmitReferralRequest request = ValidRequest();
  Child& child = *request.mutable_referral()->mutable_children(0);
  *child.mutable_expected_due_date() = Date(2027, 2, 1);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].expected_due_date: must not be "
                          "given together with date_of_birth"));
  child.clear_date_of_birth();
  child.clear_expected_due_date();
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].date_of_birth: is required (or "
                          "expected_due_date for an unborn child)"));
}

TEST(ChildDatesTest, AllZeroDateCountsAsAbsent) {
  SubmitReferralRequest request = ValidRequest();
  Child& child = *request.mutable_referral()->mutable_children(0);
  *child.mutable_date_of_birth() = Date(0, 0, 0);
  *child.mutable_expected_due_date() = Date(2027, 2, 1);
  EXPECT_THAT(Violations(request), IsEmpty());
  *child.mutable_expected_due_date() = Date(0, 0, 0);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].date_of_birth: is required (or "
                          "expected_due_date for an unborn child)"));
}

TEST(ExpectedDueDateTest, NotPastAndWithinTenMonths) {
  SubmitReferralRequest request = ValidRequest();
  Child& child = *request.mutable_referral()->mutable_children(0);
  child = UnbornChild();
  *child.mutable_expected_due_date() = Date(2026, 11, 23);  // due today
  EXPECT_THAT(Violations(request), IsEmpty());
  *child.mutable_expected_due_date() = Date(2027, 9, 23);  // 10 months
  EXPECT_THAT(Violations(request), IsEmpty());

  *child.mutable_expected_due_date() = Date(2026, 11, 22);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].expected_due_date: is in the "
                          "past"));
  *child.mutable_expected_due_date() = Date(2027, 9, 24);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].expected_due_date: must be "
                          "within the next 10 months"));
  *child.mutable_expected_due_date() = Date(2027, 2, 30);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].expected_due_date.day: is not "
                          "a day of the given month"));
}

TEST(ExpectedDueDateTest, TenMonthsFromAMonthEndIsTheLastDayOfTheMonth) {
  // 31 December + 10 months is 31 October; 30 April + 10 months would be
  // 30 February, so the limit is the end of February.
  SubmitReferralRequest request = ValidRequest();
  Child& child = *request.mutable_referral()->mutable_children(0);
  child = UnbornChild();
  const absl::Time april30 =
      absl::FromCivil(absl::CivilSecond(2027, 4, 30, 12), absl::UTCTimeZone());
  *child.mutable_expected_due_date() = Date(2028, 2, 29);
  EXPECT_THAT(Violations(request, april30), IsEmpty());
  *child.mutable_expected_due_date() = Date(2028, 3, 1);
  EXPECT_THAT(Violations(request, april30), SizeIs(1));
}

TEST(PersonDateOfBirthTest, OptionalButRealAndNotInTheFuture) {
  SubmitReferralRequest request = ValidRequest();
  Person& person = *request.mutable_referral()->mutable_household_members(0);
  person.clear_date_of_birth();
  EXPECT_THAT(Violations(request), IsEmpty());
  *person.mutable_date_of_birth() = Date(1990, 2, 30);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.household_members[0].date_of_birth.day: "
                          "is not a day of the given month"));
  *request.mutable_referral()->add_alleged_perpetrators() = ValidPerson();
  *request.mutable_referral()
       ->mutable_alleged_perpetrators(0)
       ->mutable_date_of_birth() = Date(2027, 1, 1);
  person.clear_date_of_birth();
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.alleged_perpetrators[0].date_of_birth: is "
                          "in the future"));
}

// --- Concerns ------------------------------------------------------------

TEST(ConcernsTest, AtLeastOneNoneUnspecifiedNoRepeats) {
  SubmitReferralRequest request = ValidRequest();
  Referral& referral = *request.mutable_referral();
  referral.clear_concerns();
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.concerns: at least one concern is "
                          "required"));
  referral.add_concerns(referral::v1::CONCERN_CATEGORY_NEGLECT);
  referral.add_concerns(referral::v1::CONCERN_CATEGORY_UNSPECIFIED);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.concerns[1]: must not be "
                          "CONCERN_CATEGORY_UNSPECIFIED"));
  referral.set_concerns(1, referral::v1::CONCERN_CATEGORY_NEGLECT);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.concerns[1]: repeats an earlier concern"));
  referral.set_concerns(1, static_cast<referral::v1::ConcernCategory>(99));
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.concerns[1]: is not a known concern "
                          "category"));
}

TEST(ConcernsTest, AllTwentyTwoCategoriesAtOnce) {
  SubmitReferralRequest request = ValidRequest();
  Referral& referral = *request.mutable_referral();
  referral.clear_concerns();
  for (int c = 1; c <= 22; ++c) {
    referral.add_concerns(static_cast<referral::v1::ConcernCategory>(c));
  }
  EXPECT_THAT(Violations(request), IsEmpty());
  referral.add_concerns(referral::v1::CONCERN_CATEGORY_OTHER);
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.concerns: at most 22 concerns",
                          "referral.concerns[22]: repeats an earlier "
                          "concern"));
}

// --- Description, consent -------------------------------------------------

TEST(DescriptionTest, RequiredAfterTrimming) {
  SubmitReferralRequest request = ValidRequest();
  request.mutable_referral()->set_description(" \n\t ");
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.description: is required"));
}

TEST(ConsentTest, StatusRequired) {
  SubmitReferralRequest request = ValidRequest();
  Referral& referral = *request.mutable_referral();
  referral.clear_consent();
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.consent: is required"));
  referral.mutable_consent()->set_reason_shared_without_consent("risk");
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.consent.status: is required"));
}

TEST(ConsentTest, ReasonRequiredUnlessObtained) {
  SubmitReferralRequest request = ValidRequest();
  auto* consent = request.mutable_referral()->mutable_consent();
  consent->clear_reason_shared_without_consent();
  const std::string missing =
      "referral.consent.reason_shared_without_consent: is required unless "
      "consent was obtained";
  EXPECT_THAT(Violations(request), ElementsAre(missing));
  consent->set_status(referral::v1::CONSENT_STATUS_REFUSED);
  EXPECT_THAT(Violations(request), ElementsAre(missing));
  consent->set_reason_shared_without_consent("   ");
  EXPECT_THAT(Violations(request), ElementsAre(missing));
  consent->set_status(referral::v1::CONSENT_STATUS_OBTAINED);
  EXPECT_THAT(Violations(request), IsEmpty());
}

// --- Children in Need factor codes ---------------------------------------

TEST(CinFactorCodesTest, KnownCodesAccepted) {
  SubmitReferralRequest request = ValidRequest();
  Referral& referral = *request.mutable_referral();
  referral.clear_cin_factor_codes();
  for (const char* code :
       {"1A",  "1B",  "1C",  "2C",  "3A",  "4B",  "5C",  "6A",  "7A",  "8B",
        "8F",  "9A",  "10A", "11A", "12A", "13A", "14A", "15A", "16A", "17A",
        "18B", "18C", "19B", "19C", "20",  "21",  "22A", "23A", "24A"}) {
    referral.add_cin_factor_codes(code);
  }
  EXPECT_THAT(Violations(request), IsEmpty());
}

TEST(CinFactorCodesTest, UnknownCodesRejected) {
  SubmitReferralRequest request = ValidRequest();
  Referral& referral = *request.mutable_referral();
  for (const char* code :
       {"7B", "8A", "8G", "9B", "18A", "20A", "22B", "25A", "3a", "3D", ""}) {
    referral.clear_cin_factor_codes();
    referral.add_cin_factor_codes(code);
    EXPECT_THAT(Violations(request),
                ElementsAre("referral.cin_factor_codes[0]: is not a Children "
                            "in Need census factor code"))
        << code;
  }
  referral.set_cin_factor_codes(0, "10AAA");
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.cin_factor_codes[0]: must be at most 4 "
                          "bytes"));
}

// --- Limits stated in referral.proto --------------------------------------

// One row per string field with a byte limit: a value of exactly the limit
// passes, one byte more is named.
struct StringLimit {
  std::string path;
  int max_bytes;
  void (*set)(Referral&, const std::string&);
};

const std::vector<StringLimit>& StringLimits() {
  static const auto* const limits = new std::vector<StringLimit>{
      {"referral.referrer.organisation", 200,
       [](Referral& r, const std::string& v) {
         r.mutable_referrer()->set_organisation(v);
       }},
      {"referral.referrer.name", 200,
       [](Referral& r, const std::string& v) {
         r.mutable_referrer()->set_name(v);
       }},
      {"referral.referrer.role", 200,
       [](Referral& r, const std::string& v) {
         r.mutable_referrer()->set_role(v);
       }},
      {"referral.referrer.phone", 40,
       [](Referral& r, const std::string& v) {
         r.mutable_referrer()->set_phone(v);
       }},
      {"referral.referrer.email", 254,
       [](Referral& r, const std::string& v) {
         r.mutable_referrer()->set_email(v);
       }},
      {"referral.referrer.relationship_to_child", 500,
       [](Referral& r, const std::string& v) {
         r.mutable_referrer()->set_relationship_to_child(v);
       }},
      {"referral.children[0].given_name", 100,
       [](Referral& r, const std::string& v) {
         r.mutable_children(0)->set_given_name(v);
       }},
      {"referral.children[0].family_name", 100,
       [](Referral& r, const std::string& v) {
         r.mutable_children(0)->set_family_name(v);
       }},
      {"referral.children[0].other_names[0]", 100,
       [](Referral& r, const std::string& v) {
         r.mutable_children(0)->add_other_names(v);
       }},
      {"referral.children[0].gender", 50,
       [](Referral& r, const std::string& v) {
         r.mutable_children(0)->set_gender(v);
       }},
      {"referral.children[0].school", 200,
       [](Referral& r, const std::string& v) {
         r.mutable_children(0)->set_school(v);
       }},
      {"referral.children[0].ethnicity", 50,
       [](Referral& r, const std::string& v) {
         r.mutable_children(0)->set_ethnicity(v);
       }},
      {"referral.children[0].first_language", 50,
       [](Referral& r, const std::string& v) {
         r.mutable_children(0)->set_first_language(v);
       }},
      {"referral.children[0].disability_or_special_needs", 1000,
       [](Referral& r, const std::string& v) {
         r.mutable_children(0)->set_disability_or_special_needs(v);
       }},
      {"referral.children[0].parental_responsibility", 500,
       [](Referral& r, const std::string& v) {
         r.mutable_children(0)->set_parental_responsibility(v);
       }},
      {"referral.children[0].current_whereabouts", 500,
       [](Referral& r, const std::string& v) {
         r.mutable_children(0)->set_current_whereabouts(v);
       }},
      {"referral.children[0].address.lines[1]", 120,
       [](Referral& r, const std::string& v) {
         r.mutable_children(0)->mutable_address()->add_lines(v);
       }},
      {"referral.children[0].address.town", 80,
       [](Referral& r, const std::string& v) {
         r.mutable_children(0)->mutable_address()->set_town(v);
       }},
      {"referral.household_members[0].given_name", 100,
       [](Referral& r, const std::string& v) {
         r.mutable_household_members(0)->set_given_name(v);
       }},
      {"referral.household_members[0].family_name", 100,
       [](Referral& r, const std::string& v) {
         r.mutable_household_members(0)->set_family_name(v);
       }},
      {"referral.household_members[0].relationship", 200,
       [](Referral& r, const std::string& v) {
         r.mutable_household_members(0)->set_relationship(v);
       }},
      {"referral.household_members[0].notes", 2000,
       [](Referral& r, const std::string& v) {
         r.mutable_household_members(0)->set_notes(v);
       }},
      {"referral.household_members[0].address.lines[0]", 120,
       [](Referral& r, const std::string& v) {
         r.mutable_household_members(0)->mutable_address()->add_lines(v);
       }},
      {"referral.alleged_perpetrators[0].notes", 2000,
       [](Referral& r, const std::string& v) {
         r.add_alleged_perpetrators()->set_notes(v);
       }},
      {"referral.alleged_perpetrators[0].address.town", 80,
       [](Referral& r, const std::string& v) {
         r.add_alleged_perpetrators()->mutable_address()->set_town(v);
       }},
      {"referral.description", 20000,
       [](Referral& r, const std::string& v) { r.set_description(v); }},
      {"referral.child_voice.words", 10000,
       [](Referral& r, const std::string& v) {
         r.mutable_child_voice()->set_words(v);
       }},
      {"referral.child_voice.not_captured_reason", 1000,
       [](Referral& r, const std::string& v) {
         r.mutable_child_voice()->set_not_captured_reason(v);
       }},
      {"referral.consent.reason_shared_without_consent", 2000,
       [](Referral& r, const std::string& v) {
         r.mutable_consent()->set_reason_shared_without_consent(v);
       }},
      {"referral.referrer_reference", 64,
       [](Referral& r, const std::string& v) { r.set_referrer_reference(v); }},
      {"referral.background", 10000,
       [](Referral& r, const std::string& v) { r.set_background(v); }},
      {"referral.support_already_given", 5000,
       [](Referral& r, const std::string& v) {
         r.set_support_already_given(v);
       }},
      {"referral.hoped_for_outcome", 2000,
       [](Referral& r, const std::string& v) { r.set_hoped_for_outcome(v); }},
  };
  return *limits;
}

TEST(StringLimitsTest, EveryStatedByteLimitIsEnforced) {
  for (const StringLimit& limit : StringLimits()) {
    SCOPED_TRACE(limit.path);
    SubmitReferralRequest at_limit = ValidRequest();
    limit.set(*at_limit.mutable_referral(), std::string(limit.max_bytes, 'x'));
    EXPECT_THAT(Violations(at_limit), IsEmpty());

    SubmitReferralRequest over = ValidRequest();
    limit.set(*over.mutable_referral(), std::string(limit.max_bytes + 1, 'x'));
    EXPECT_THAT(Violations(over),
                ElementsAre(limit.path + ": must be at most " +
                            std::to_string(limit.max_bytes) + " bytes"));
  }
}

TEST(StringLimitsTest, LimitsCountBytesNotCharacters) {
  SubmitReferralRequest request = ValidRequest();
  Child& child = *request.mutable_referral()->mutable_children(0);
  child.set_given_name(Repeat("\xC3\xA9", 50));  // 50 x "é" = 100 bytes
  EXPECT_THAT(Violations(request), IsEmpty());
  child.set_given_name(Repeat("\xC3\xA9", 50) + "e");
  EXPECT_THAT(Violations(request),
              ElementsAre("referral.children[0].given_name: must be at most "
                          "100 bytes"));
}

struct CountLimit {
  std::string violation;
  int max_count;
  void (*add)(Referral&);
};

TEST(CountLimitsTest, EveryStatedCountIsEnforced) {
  const std::vector<CountLimit> limits = {
      {"referral.household_members: at most 20 household members", 20,
       [](Referral& r) { *r.add_household_members() = ValidPerson(); }},
      {"referral.alleged_perpetrators: at most 10 alleged perpetrators", 10,
       [](Referral& r) { *r.add_alleged_perpetrators() = ValidPerson(); }},
      {"referral.children[0].other_names: at most 5 other names", 5,
       [](Referral& r) { r.mutable_children(0)->add_other_names("Known-as"); }},
      {"referral.children[0].address.lines: at most 4 lines", 4,
       [](Referral& r) {
         r.mutable_children(0)->mutable_address()->add_lines("A line");
       }},
      {"referral.cin_factor_codes: at most 30 cin factor codes", 30,
       [](Referral& r) { r.add_cin_factor_codes("3B"); }},
  };
  for (const CountLimit& limit : limits) {
    SCOPED_TRACE(limit.violation);
    SubmitReferralRequest request = ValidRequest();
    Referral& referral = *request.mutable_referral();
    // The valid referral may already hold some; fill up to the limit.
    referral.clear_household_members();
    referral.clear_cin_factor_codes();
    referral.mutable_children(0)->mutable_address()->clear_lines();
    for (int i = 0; i < limit.max_count; ++i) limit.add(referral);
    EXPECT_THAT(Violations(request), IsEmpty());
    limit.add(referral);
    EXPECT_THAT(Violations(request), ElementsAre(limit.violation));
  }
}

// --- UTF-8 ---------------------------------------------------------------

TEST(Utf8Test, EveryStringMustBeValidUtf8) {
  SubmitReferralRequest request = ValidRequest();
  Referral& referral = *request.mutable_referral();
  referral.mutable_children(0)->set_given_name("Zo\xC3\xAB");  // "Zoë"
  EXPECT_THAT(Violations(request), IsEmpty());

  referral.mutable_children(0)->mutable_address()->set_lines(0, "bad \xC3");
  referral.mutable_household_members(0)->set_notes("\xED\xA0\x80");  // D800
  referral.set_background("overlong \xC0\xAF");
  referral.mutable_child_voice()->set_words("\xFF");
  EXPECT_THAT(
      Violations(request),
      AllOf(SizeIs(4),
            Contains("referral.children[0].address.lines[0]: must be valid "
                     "UTF-8"),
            Contains("referral.household_members[0].notes: must be valid "
                     "UTF-8"),
            Contains("referral.background: must be valid UTF-8"),
            Contains("referral.child_voice.words: must be valid UTF-8")));
}

// --- NormaliseReferral -----------------------------------------------------

TEST(NormaliseReferralTest, TrimsStringsAndNormalisesIdentifiers) {
  Referral referral = ValidRequest().referral();
  Child& child = *referral.mutable_children(0);
  child.set_given_name("  Testy\n");
  child.set_nhs_number(" 999 000 0018 ");
  child.set_unique_pupil_number(" W874200024001 ");
  child.mutable_address()->set_lines(0, "\t1 Fictional Row ");
  child.mutable_address()->set_postcode(" pe1  2ab ");
  referral.mutable_household_members(0)->mutable_address()->set_postcode(
      "pe29 3ab");
  referral.set_description("  Something happened.  ");
  referral.set_cin_factor_codes(0, " 3A ");

  NormaliseReferral(&referral);

  EXPECT_EQ(child.given_name(), "Testy");
  EXPECT_EQ(child.nhs_number(), "9990000018");
  EXPECT_EQ(child.unique_pupil_number(), "W874200024001");
  EXPECT_EQ(child.address().lines(0), "1 Fictional Row");
  EXPECT_EQ(child.address().postcode(), "PE1 2AB");
  EXPECT_EQ(referral.household_members(0).address().postcode(), "PE29 3AB");
  EXPECT_EQ(referral.description(), "Something happened.");
  EXPECT_EQ(referral.cin_factor_codes(0), "3A");
}

TEST(NormaliseReferralTest, NormalisedReferralStillValidates) {
  SubmitReferralRequest request = ValidRequest();
  request.mutable_referral()->mutable_children(0)->set_nhs_number(
      "999 000 "
      "0018");
  ASSERT_THAT(Violations(request), IsEmpty());
  NormaliseReferral(request.mutable_referral());
  EXPECT_THAT(Violations(request), IsEmpty());
}

// --- Calendar date helpers -------------------------------------------------

TEST(CalendarDateTest, AbsentOnlyWhenAllZero) {
  EXPECT_TRUE(IsCalendarDateAbsent(CalendarDate()));
  EXPECT_TRUE(IsCalendarDateAbsent(Date(0, 0, 0)));
  EXPECT_FALSE(IsCalendarDateAbsent(Date(0, 0, 1)));
}

TEST(CalendarDateTest, ToCivilDayOnlyForRealDates) {
  EXPECT_THAT(CalendarDateToCivilDay(Date(2020, 2, 29)),
              Optional(absl::CivilDay(2020, 2, 29)));
  EXPECT_EQ(CalendarDateToCivilDay(Date(2026, 2, 30)), std::nullopt);
  EXPECT_EQ(CalendarDateToCivilDay(Date(0, 0, 0)), std::nullopt);
  EXPECT_EQ(CalendarDateToCivilDay(Date(2201, 1, 1)), std::nullopt);
}

}  // namespace
}  // namespace referral::server
