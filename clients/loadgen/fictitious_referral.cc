#include "fictitious_referral.h"

#include <array>
#include <vector>

#include "absl/strings/str_cat.h"

namespace referral::clients {
namespace {

namespace v1 = ::referral::v1;

constexpr std::array<absl::string_view, 20> kGivenNames = {
    "Alex",  "Sam",   "Jordan",  "Riley",   "Casey", "Morgan", "Taylor",
    "Jamie", "Robin", "Charlie", "Frankie", "Jesse", "Quinn",  "Rowan",
    "Skye",  "Drew",  "Emery",   "Harley",  "Kit",   "Lee"};
// Surnames no family is likely to have, so the data reads as made up.
constexpr std::array<absl::string_view, 16> kFamilyNames = {
    "Example",     "Sample",     "Testfield", "Mockford",
    "Placeholder", "Dummyworth", "Fakeley",   "Specimen",
    "Patternby",   "Demoson",    "Loadwell",  "Synthley",
    "Trialsby",    "Fixturey",   "Stubbings", "Benchley"};
// Well-formed Peterborough-style postcodes (format only).
constexpr std::array<absl::string_view, 8> kPostcodes = {
    "PE1 2AB", "PE1 4DX", "PE2 5TE", "PE3 6RS",
    "PE4 7HP", "PE7 8BW", "PE6 9JU", "PE2 1NZ"};

int CheckDigit(int64_t nine_digits) {
  int sum = 0;
  for (int weight = 2; weight <= 10; ++weight) {
    sum += static_cast<int>(nine_digits % 10) * weight;
    nine_digits /= 10;
  }
  const int check = 11 - sum % 11;
  return check == 11 ? 0 : check;  // 10: never issued
}

// Every 6-digit serial whose "999" base has a usable check digit.
const std::vector<int32_t>& ValidSerials() {
  static const auto* const kSerials = [] {
    auto* serials = new std::vector<int32_t>;
    serials->reserve(kTestNhsNumbers);
    for (int32_t s = 0; s < 1000000; ++s) {
      if (CheckDigit(999000000LL + s) != 10) serials->push_back(s);
    }
    return serials;
  }();
  return *kSerials;
}

// Names repeat every kNamePeriod indexes; the birth date moves on once per
// period, so that name and date of birth together stay distinct for about
// 24 million indexes (kNamePeriod x 14 years x 12 months x 28 days).
constexpr int64_t kNamePeriod = static_cast<int64_t>(
    kGivenNames.size() * kFamilyNames.size() * kFamilyNames.size());

v1::CalendarDate DateOfBirth(int64_t index, int child, absl::Time now) {
  const absl::CivilDay today = absl::ToCivilDay(now, absl::UTCTimeZone());
  const int64_t n = index / kNamePeriod;
  v1::CalendarDate date;
  // Siblings three years apart; every child between 2 and 15 years old.
  date.set_year(static_cast<int32_t>(today.year() - 2 - (n + 3 * child) % 14));
  date.set_month(static_cast<int32_t>(1 + (n / 14) % 12));
  date.set_day(static_cast<int32_t>(1 + (n / 168 + child * 5) % 28));
  return date;
}

v1::Address MakeAddress(int64_t index) {
  v1::Address address;
  address.add_lines(absl::StrCat(1 + index % 200, " Example Road"));
  address.add_lines("Testington");
  address.set_town("Peterborough");
  address.set_postcode(std::string(kPostcodes[index % kPostcodes.size()]));
  return address;
}

void FillChild(int64_t index, int child, absl::Time now, v1::Child* out) {
  const int64_t given = static_cast<int64_t>(kGivenNames.size());
  const int64_t family = static_cast<int64_t>(kFamilyNames.size());
  out->set_given_name(std::string(kGivenNames[(index + 7 * child) % given]));
  // Double-barrelled, so that siblings share it and it varies widely.
  out->set_family_name(
      absl::StrCat(kFamilyNames[(index / given) % family], "-",
                   kFamilyNames[(index / (given * family)) % family]));
  *out->mutable_date_of_birth() = DateOfBirth(index, child, now);
  // The 999 test range has too few numbers for millions of children: past
  // it, none, as in many police referrals (children then match by name and
  // date of birth, which stay distinct).
  if (index * 2 + child < kTestNhsNumbers) {
    out->set_nhs_number(TestNhsNumber(index * 2 + child));
  } else {
    out->clear_nhs_number();
  }
}

}  // namespace

bool IsValidNhsNumber(absl::string_view digits) {
  if (digits.size() != 10) return false;
  int64_t base = 0;
  for (int i = 0; i < 9; ++i) {
    if (digits[i] < '0' || digits[i] > '9') return false;
    base = base * 10 + (digits[i] - '0');
  }
  if (digits[9] < '0' || digits[9] > '9') return false;
  const int check = CheckDigit(base);
  return check != 10 && check == digits[9] - '0';
}

std::string TestNhsNumber(int64_t index) {
  const std::vector<int32_t>& serials = ValidSerials();
  const int64_t n = static_cast<int64_t>(serials.size());
  const int64_t base = 999000000LL + serials[((index % n) + n) % n];
  return absl::StrCat(base, CheckDigit(base));
}

void VaryChildren(int64_t index, v1::Referral* referral, absl::Time now) {
  for (int i = 0; i < referral->children_size(); ++i) {
    v1::Child* child = referral->mutable_children(i);
    const bool unborn =
        child->has_expected_due_date() && !child->has_date_of_birth();
    v1::CalendarDate due = child->expected_due_date();
    FillChild(index, i, now, child);
    if (unborn) {
      child->clear_date_of_birth();
      *child->mutable_expected_due_date() = due;
    }
  }
}

v1::Referral MakeFictitiousReferral(int64_t index, absl::string_view agency_id,
                                    absl::Time now) {
  v1::Referral r;
  v1::Referrer* referrer = r.mutable_referrer();
  referrer->set_agency_type(v1::AGENCY_TYPE_POLICE);
  referrer->set_agency_id(std::string(agency_id));
  referrer->set_organisation("Example Constabulary (synthetic load test)");
  referrer->set_name("PC Test Officer");
  referrer->set_role("Public protection unit officer");
  referrer->set_phone("01632 960123");
  referrer->set_email("loadgen@example.invalid");
  referrer->set_relationship_to_child(
      "Attended a domestic incident at the family home");

  const v1::Address address = MakeAddress(index);
  for (int c = 0; c < 2; ++c) {
    v1::Child* child = r.add_children();
    FillChild(index, c, now, child);
    child->set_sex(c == 0 ? v1::SEX_FEMALE : v1::SEX_MALE);
    *child->mutable_address() = address;
    child->set_school(c == 0 ? "Example Primary School"
                             : "Sample Street Nursery");
    child->set_ethnicity("WBRI");
    child->set_first_language("English");
    child->set_parental_responsibility("Mother and father");
    child->set_current_whereabouts("At home with mother");
  }
  const std::string family = r.children(0).family_name();

  v1::Person* mother = r.add_household_members();
  mother->set_given_name("Pat");
  mother->set_family_name(family);
  mother->set_relationship("Mother");
  mother->set_notes("Victim of the reported incident; engaged with officers.");
  v1::Person* father = r.add_alleged_perpetrators();
  father->set_given_name("Chris");
  father->set_family_name(family);
  father->set_relationship("Father");
  *father->mutable_address() = address;
  father->set_notes(
      "Arrested at the scene and bailed with conditions not to contact the "
      "mother.");

  r.add_concerns(v1::CONCERN_CATEGORY_DOMESTIC_ABUSE);
  r.add_concerns(v1::CONCERN_CATEGORY_EMOTIONAL_ABUSE);
  r.set_immediate_risk(false);
  r.set_description(
      "SYNTHETIC LOAD-TEST REFERRAL: no real person is described. Police "
      "were called by a neighbour at 23:40 after hearing shouting and "
      "breaking glass. On arrival officers found the mother with a minor "
      "injury to her arm and the kitchen in disarray. Both children were "
      "awake and upstairs; the older child had called a grandparent. The "
      "father was arrested for assault and criminal damage. This is the "
      "third call-out to the address in six months. The mother says the "
      "children were not physically hurt but were frightened, and that the "
      "older child has been reluctant to go to school after such nights. "
      "A DASH risk assessment was completed and graded medium. The mother "
      "has agreed to a referral to the local domestic abuse service.");
  r.mutable_child_voice()->set_words(
      "The older child told officers: \"I hid my brother under the covers "
      "and put my headphones on him so he wouldn't hear. I don't want Dad "
      "to come back tonight.\"");
  v1::Consent* consent = r.mutable_consent();
  consent->set_status(v1::CONSENT_STATUS_NOT_SOUGHT);
  consent->set_family_aware(true);
  consent->set_reason_shared_without_consent(
      "Shared to safeguard the children (Children Act 2004 s11; UK GDPR "
      "6(1)(e) and 9(2)(g)). Seeking the father's consent could increase "
      "the risk to the mother and children.");
  r.set_referrer_reference(absl::StrCat("LOADGEN-", index));
  r.set_background(
      "Two earlier police notifications (verbal arguments, no arrests). "
      "The school reports the older child's attendance has fallen to 88% "
      "this term. No known involvement of children's social care.");
  r.set_support_already_given(
      "Officers gave the mother information about local domestic abuse "
      "services and the Clare's Law scheme.");
  r.set_hoped_for_outcome(
      "Assessment of the children's needs and support for the mother.");
  r.add_cin_factor_codes("3B");
  r.add_cin_factor_codes("17A");
  return r;
}

}  // namespace referral::clients
