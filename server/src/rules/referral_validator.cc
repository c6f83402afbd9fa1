#include "rules/referral_validator.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "base/utf8.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "referral/v1/broker.pb.h"
#include "referral/v1/contract_limits.h"
#include "referral/v1/referral.pb.h"
#include "rules/field_violations.h"
#include "rules/identifiers.h"
#include "rules/names.h"

namespace referral::server {
namespace {

using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;
using ::referral::v1::Address;
using ::referral::v1::CalendarDate;
using ::referral::v1::Child;
using ::referral::v1::ChildVoice;
using ::referral::v1::Consent;
using ::referral::v1::Person;
using ::referral::v1::Referral;
using ::referral::v1::Referrer;
using ::referral::v1::SubmitReferralRequest;

// String and list limits are not here: they are declared once, on the
// fields of referral.proto and broker.proto (limits.proto), and read by
// reflection (contract_limits.h) in CheckTextRecursively.
constexpr int kMinYear = 1900;
constexpr int kMaxYear = 2200;
constexpr int kChildAgeLimitYears = 18;
constexpr int kCareLeaverAgeLimitYears = 25;
constexpr int kMaxMonthsUntilDue = 10;

// Children in Need census factor codes (domain notes section 4). Factors 1
// to 6 can be about the child (A), a parent or carer (B) or another
// household member (C); the rest carry only the suffixes the census defines.
// "20" (other) has no suffix. "21" is not in the domain notes but is the
// census code for "no factors identified", so a referrer copying from a
// census-aligned form may send it; accepting it loses nothing.
const absl::flat_hash_set<std::string_view>& KnownCinFactorCodes() {
  static const auto* const codes = new absl::flat_hash_set<std::string_view>{
      "1A",  "1B",  "1C",  "2A",  "2B",  "2C",  "3A",  "3B",  "3C",
      "4A",  "4B",  "4C",  "5A",  "5B",  "5C",  "6A",  "6B",  "6C",
      "7A",  "8B",  "8C",  "8D",  "8E",  "8F",  "9A",  "10A", "11A",
      "12A", "13A", "14A", "15A", "16A", "17A", "18B", "18C", "19B",
      "19C", "20",  "21",  "22A", "23A", "24A",
  };
  return *codes;
}

// "Today" is the civil date where the children live, so a referral made at
// 00:30 BST is dated that day, not the previous one (UTC).
absl::TimeZone CivilTimeZone() {
  static const absl::TimeZone tz = [] {
    absl::TimeZone london;
    if (absl::LoadTimeZone("Europe/London", &london)) return london;
    // Without tzdata (a stripped container) UTC is the best available: it
    // differs from London only between midnight and 01:00 in summer, which
    // moves the date rules' "today" by one day at most.
    return absl::UTCTimeZone();
  }();
  return tz;
}

// Debian's Abseil has its own absl::string_view (not std::string_view), so
// paths are built with std::string rather than absl::StrCat.
std::string Path(std::string_view prefix, std::string_view field) {
  std::string path(prefix);
  path.push_back('.');
  path.append(field);
  return path;
}

std::string Indexed(std::string_view prefix, std::string_view field, int i) {
  std::string path = Path(prefix, field);
  path.push_back('[');
  path.append(std::to_string(i));
  path.push_back(']');
  return path;
}

std::string_view Trimmed(std::string_view s) {
  while (!s.empty() &&
         absl::ascii_isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         absl::ascii_isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

// Walks every field of `message` (recursively) by reflection, so a field
// added to the proto later is covered without anyone remembering to list
// it here: every string must be valid UTF-8 (protobuf C++ does not reject
// invalid UTF-8 on every path, and a stored invalid string breaks JSON
// export and the council's case system downstream), and every string and
// list must keep within the limits the contract declares on its field.
//
// Where the walk is: a chain up to the root, turned into a field path only
// when there is something to report (most referrals have nothing, and they
// are checked on every submission).
struct FieldStep {
  const FieldStep* parent = nullptr;
  std::string_view name;  // the root's name is the whole prefix
  int index = -1;         // -1: not an element of a repeated field

  std::string ToPath() const {
    if (parent == nullptr) return std::string(name);
    const std::string up = parent->ToPath();
    return index < 0 ? Path(up, name) : Indexed(up, name, index);
  }
};

// "other_names" -> "other names", for "at most 5 other names".
std::string ItemsNoun(const FieldDescriptor& field) {
  std::string noun = field.name();
  for (char& c : noun) {
    if (c == '_') c = ' ';
  }
  return noun;
}

void CheckTextRecursively(const Message& message, const FieldStep& at,
                          FieldViolations& violations) {
  const Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  std::string scratch;
  for (const FieldDescriptor* field : fields) {
    const bool repeated = field->is_repeated();
    const int n = repeated ? reflection->FieldSize(message, field) : 1;
    if (repeated) {
      const uint32_t max_items = v1::LimitsOf(*field).max_items;
      if (max_items > 0 && static_cast<uint32_t>(n) > max_items) {
        const FieldStep step{&at, field->name(), -1};
        violations.Add(step.ToPath(), absl::StrCat("at most ", max_items, " ",
                                                   ItemsNoun(*field)));
      }
    }
    if (field->type() == FieldDescriptor::TYPE_STRING) {
      const uint32_t max_bytes = v1::ValueByteLimit(*field);
      for (int i = 0; i < n; ++i) {
        const std::string& value =
            repeated ? reflection->GetRepeatedStringReference(message, field, i,
                                                              &scratch)
                     : reflection->GetStringReference(message, field, &scratch);
        if (!IsValidUtf8(value)) {
          const FieldStep step{&at, field->name(), repeated ? i : -1};
          violations.Add(step.ToPath(), "must be valid UTF-8");
        } else if (max_bytes > 0 && value.size() > max_bytes) {
          const FieldStep step{&at, field->name(), repeated ? i : -1};
          violations.Add(step.ToPath(),
                         absl::StrCat("must be at most ", max_bytes, " bytes"));
        }
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      for (int i = 0; i < n; ++i) {
        const FieldStep step{&at, field->name(), repeated ? i : -1};
        CheckTextRecursively(
            repeated ? reflection->GetRepeatedMessage(message, field, i)
                     : reflection->GetMessage(message, field),
            step, violations);
      }
    }
  }
}

void CheckTextRecursively(const Message& message, std::string_view prefix,
                          FieldViolations& violations) {
  CheckTextRecursively(message, FieldStep{nullptr, prefix, -1}, violations);
}

// Whether `value` of `field` keeps within its declared byte limit (format
// checks skip values already refused for their length).
bool WithinByteLimit(const Message& message, std::string_view field_name,
                     std::string_view value) {
  const FieldDescriptor* field =
      message.GetDescriptor()->FindFieldByName(std::string(field_name));
  const uint32_t max_bytes = field ? v1::ValueByteLimit(*field) : 0;
  return max_bytes == 0 || value.size() <= max_bytes;
}

int DaysInMonth(int year, int month) {
  const absl::CivilMonth start(year, month);
  return static_cast<int>(absl::CivilDay(start + 1) - absl::CivilDay(start));
}

// The same day `months` later, or the last day of that month when it is
// shorter (31 January + 1 month is 28 or 29 February, not 3 March).
absl::CivilDay AddMonths(absl::CivilDay day, int months) {
  const absl::CivilMonth month = absl::CivilMonth(day) + months;
  const int last = DaysInMonth(static_cast<int>(month.year()), month.month());
  return absl::CivilDay(month.year(), month.month(),
                        day.day() < last ? day.day() : last);
}

// The day a person born on `birth` reaches `years` of age. Someone born on
// 29 February reaches it on 1 March in a common year (as in English law);
// CivilDay's normalisation of 29 February to 1 March gives exactly that.
absl::CivilDay BirthdayAtAge(absl::CivilDay birth, int years) {
  return absl::CivilDay(birth.year() + years, birth.month(), birth.day());
}

// Reports what is wrong with a date that was given (not absent), naming the
// offending part; returns the day when it is real.
std::optional<absl::CivilDay> CheckCalendarDate(std::string_view path,
                                                const CalendarDate& date,
                                                FieldViolations& violations) {
  bool ok = true;
  if (date.year() < kMinYear || date.year() > kMaxYear) {
    violations.Add(
        Path(path, "year"),
        absl::StrCat("must be between ", kMinYear, " and ", kMaxYear));
    ok = false;
  }
  if (date.month() < 1 || date.month() > 12) {
    violations.Add(Path(path, "month"), "must be between 1 and 12");
    ok = false;
  } else if (date.day() < 1 ||
             date.day() > DaysInMonth(date.year(), date.month())) {
    violations.Add(Path(path, "day"), "is not a day of the given month");
    ok = false;
  }
  if (!ok) return std::nullopt;
  return absl::CivilDay(date.year(), date.month(), date.day());
}

void CheckPostcode(std::string_view path, std::string_view postcode,
                   FieldViolations& violations) {
  const std::string_view trimmed = Trimmed(postcode);
  if (trimmed.empty()) return;  // optional: the address may be partial
  if (!NormalisePostcode(trimmed).has_value()) {
    violations.Add(path, "is not a valid UK postcode");
  }
}

void CheckAddress(const Address& address, std::string_view prefix,
                  FieldViolations& violations) {
  CheckPostcode(Path(prefix, "postcode"), address.postcode(), violations);
}

void CheckNhsNumber(std::string_view path, std::string_view value,
                    FieldViolations& violations) {
  const std::string_view trimmed = Trimmed(value);
  if (trimmed.empty()) return;  // optional: many children's are not known
  const std::string digits = NormaliseNhsNumber(trimmed);
  const bool ten_digits =
      digits.size() == 10 &&
      digits.find_first_not_of("0123456789") == std::string::npos;
  if (!ten_digits) {
    violations.Add(path, "must be 10 digits (spaces allowed)");
  } else if (!IsValidNhsNumber(digits)) {
    violations.Add(path, "check digit is wrong");
  }
}

void CheckUniquePupilNumber(std::string_view path, std::string_view value,
                            FieldViolations& violations) {
  const std::string_view upn = Trimmed(value);
  if (upn.empty()) return;  // optional: only school-age children have one
  if (upn.size() != 13) {
    violations.Add(path, "must be 13 characters");
    return;
  }
  bool shape = absl::ascii_isupper(static_cast<unsigned char>(upn[0])) &&
               (absl::ascii_isdigit(static_cast<unsigned char>(upn[12])) ||
                absl::ascii_isupper(static_cast<unsigned char>(upn[12])));
  for (std::size_t i = 1; i < 12; ++i) {
    shape = shape && absl::ascii_isdigit(static_cast<unsigned char>(upn[i]));
  }
  if (!shape) {
    violations.Add(path,
                   "must be an upper-case check letter, 11 digits and a final "
                   "digit or upper-case letter");
  } else if (!IsValidUniquePupilNumber(upn)) {
    violations.Add(path, "check letter is wrong");
  }
}

void CheckChild(const Child& child, std::string_view prefix,
                absl::CivilDay today, FieldViolations& violations) {
  const bool has_birth =
      child.has_date_of_birth() && !IsCalendarDateAbsent(child.date_of_birth());
  const bool has_due = child.has_expected_due_date() &&
                       !IsCalendarDateAbsent(child.expected_due_date());
  const bool unborn = has_due && !has_birth;
  if (!has_birth && !has_due) {
    violations.Add(Path(prefix, "date_of_birth"),
                   "is required (or expected_due_date for an unborn child)");
  } else if (has_birth && has_due) {
    violations.Add(Path(prefix, "expected_due_date"),
                   "must not be given together with date_of_birth");
  }
  if (has_birth) {
    const std::string path = Path(prefix, "date_of_birth");
    if (const std::optional<absl::CivilDay> birth =
            CheckCalendarDate(path, child.date_of_birth(), violations)) {
      const int limit =
          child.care_leaver() ? kCareLeaverAgeLimitYears : kChildAgeLimitYears;
      if (*birth > today) {
        violations.Add(path, "is in the future");
      } else if (today >= BirthdayAtAge(*birth, limit)) {
        violations.Add(path, child.care_leaver()
                                 ? "a care leaver must be under 25"
                                 : "the child must be under 18 (under 25 for "
                                   "a care leaver)");
      }
    }
  }
  if (has_due) {
    const std::string path = Path(prefix, "expected_due_date");
    if (const std::optional<absl::CivilDay> due =
            CheckCalendarDate(path, child.expected_due_date(), violations)) {
      if (*due < today) {
        violations.Add(path, "is in the past");
      } else if (*due > AddMonths(today, kMaxMonthsUntilDue)) {
        violations.Add(path, "must be within the next 10 months");
      }
    }
  }

  if (child.sex() == referral::v1::SEX_UNSPECIFIED) {
    violations.Add(Path(prefix, "sex"), "is required");
  } else if (!referral::v1::Sex_IsValid(child.sex())) {
    violations.Add(Path(prefix, "sex"), "is not a known value");
  }
  // An unborn child may not be named yet; anyone else has a family name.
  if (!unborn && Trimmed(child.family_name()).empty()) {
    violations.Add(Path(prefix, "family_name"),
                   "is required unless the child is unborn");
  }

  CheckNhsNumber(Path(prefix, "nhs_number"), child.nhs_number(), violations);
  CheckUniquePupilNumber(Path(prefix, "unique_pupil_number"),
                         child.unique_pupil_number(), violations);
  if (child.has_address()) {
    CheckAddress(child.address(), Path(prefix, "address"), violations);
  }
}

void CheckPerson(const Person& person, std::string_view prefix,
                 absl::CivilDay today, FieldViolations& violations) {
  if (person.has_date_of_birth() &&
      !IsCalendarDateAbsent(person.date_of_birth())) {
    const std::string path = Path(prefix, "date_of_birth");
    if (const std::optional<absl::CivilDay> birth =
            CheckCalendarDate(path, person.date_of_birth(), violations)) {
      if (*birth > today) violations.Add(path, "is in the future");
    }
  }
  if (person.has_address()) {
    CheckAddress(person.address(), Path(prefix, "address"), violations);
  }
}

void CheckPeople(const google::protobuf::RepeatedPtrField<Person>& people,
                 std::string_view prefix, std::string_view name,
                 absl::CivilDay today, FieldViolations& violations) {
  for (int i = 0; i < people.size(); ++i) {
    CheckPerson(people.Get(i), Indexed(prefix, name, i), today, violations);
  }
}

void CheckReferrer(const Referral& referral, std::string_view prefix,
                   FieldViolations& violations) {
  if (!referral.has_referrer()) {
    violations.Add(prefix, "is required");
    return;
  }
  const Referrer& referrer = referral.referrer();
  if (referrer.agency_type() == referral::v1::AGENCY_TYPE_UNSPECIFIED) {
    violations.Add(Path(prefix, "agency_type"), "is required");
  } else if (!referral::v1::AgencyType_IsValid(referrer.agency_type())) {
    violations.Add(Path(prefix, "agency_type"), "is not a known value");
  }
  // Not trimmed: the agency id scopes idempotency keys and outcomes, so it
  // must be exactly the registered identifier.
  if (referrer.agency_id().empty()) {
    violations.Add(Path(prefix, "agency_id"), "is required");
  } else if (!IsValidName(referrer.agency_id())) {
    violations.Add(Path(prefix, "agency_id"),
                   "must be 1 to 64 characters from a-z, 0-9 and '-'");
  }
}

void CheckConcerns(const Referral& referral, std::string_view prefix,
                   FieldViolations& violations) {
  const std::string path = Path(prefix, "concerns");
  if (referral.concerns_size() == 0) {
    violations.Add(path, "at least one concern is required");
  }
  absl::flat_hash_set<int> seen;
  for (int i = 0; i < referral.concerns_size(); ++i) {
    const int concern = referral.concerns(i);
    const std::string item = Indexed(prefix, "concerns", i);
    if (concern == referral::v1::CONCERN_CATEGORY_UNSPECIFIED) {
      violations.Add(item, "must not be CONCERN_CATEGORY_UNSPECIFIED");
    } else if (!referral::v1::ConcernCategory_IsValid(concern)) {
      violations.Add(item, "is not a known concern category");
    } else if (!seen.insert(concern).second) {
      violations.Add(item, "repeats an earlier concern");
    }
  }
}

void CheckCinFactorCodes(const Referral& referral, std::string_view prefix,
                         FieldViolations& violations) {
  const auto& codes = referral.cin_factor_codes();
  for (int i = 0; i < codes.size(); ++i) {
    if (WithinByteLimit(referral, "cin_factor_codes", codes.Get(i)) &&
        !KnownCinFactorCodes().contains(Trimmed(codes.Get(i)))) {
      violations.Add(Indexed(prefix, "cin_factor_codes", i),
                     "is not a Children in Need census factor code");
    }
  }
}

void CheckConsent(const Referral& referral, std::string_view prefix,
                  FieldViolations& violations) {
  if (!referral.has_consent()) {
    violations.Add(prefix, "is required");
    return;
  }
  const Consent& consent = referral.consent();
  if (consent.status() == referral::v1::CONSENT_STATUS_UNSPECIFIED) {
    violations.Add(Path(prefix, "status"), "is required");
  } else if (!referral::v1::ConsentStatus_IsValid(consent.status())) {
    violations.Add(Path(prefix, "status"), "is not a known value");
  } else if (consent.status() != referral::v1::CONSENT_STATUS_OBTAINED &&
             Trimmed(consent.reason_shared_without_consent()).empty()) {
    // Sharing without consent is lawful when a child is at risk, but the
    // reason for the decision must be recorded.
    violations.Add(Path(prefix, "reason_shared_without_consent"),
                   "is required unless consent was obtained");
  }
}

void CheckReferral(const Referral& referral, absl::CivilDay today,
                   FieldViolations& violations) {
  constexpr std::string_view kPrefix = "referral";
  CheckTextRecursively(referral, kPrefix, violations);
  CheckReferrer(referral, Path(kPrefix, "referrer"), violations);

  if (referral.children_size() == 0) {
    violations.Add(Path(kPrefix, "children"), "at least one child is required");
  }
  for (int i = 0; i < referral.children_size(); ++i) {
    CheckChild(referral.children(i), Indexed(kPrefix, "children", i), today,
               violations);
  }
  CheckPeople(referral.household_members(), kPrefix, "household_members",
              today, violations);
  CheckPeople(referral.alleged_perpetrators(), kPrefix, "alleged_perpetrators",
              today, violations);
  CheckConcerns(referral, kPrefix, violations);
  // The one required free text; its length is checked with the others.
  if (Trimmed(referral.description()).empty()) {
    violations.Add(Path(kPrefix, "description"), "is required");
  }
  CheckConsent(referral, Path(kPrefix, "consent"), violations);
  CheckCinFactorCodes(referral, kPrefix, violations);
}

void CheckIdempotencyKey(std::string_view key, FieldViolations& violations) {
  constexpr std::string_view kPath = "idempotency_key";
  if (key.empty()) {
    violations.Add(kPath, "is required");
    return;
  }
  const uint32_t max_bytes = v1::ValueByteLimit(
      *SubmitReferralRequest::descriptor()->FindFieldByName("idempotency_key"));
  if (key.size() > max_bytes) {
    violations.Add(kPath, absl::StrCat("must be at most ", max_bytes, " bytes"));
  }
  for (char c : key) {
    if (c < 0x20 || c > 0x7E) {
      violations.Add(kPath, "must be printable ASCII");
      break;
    }
  }
}

// Trims every string field by reflection, for the same reason as the UTF-8
// walk: new fields are covered automatically.
void TrimStringsRecursively(Message* message) {
  const Reflection* reflection = message->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(*message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (field->type() == FieldDescriptor::TYPE_STRING) {
      if (field->is_repeated()) {
        const int n = reflection->FieldSize(*message, field);
        for (int i = 0; i < n; ++i) {
          const std::string value =
              reflection->GetRepeatedString(*message, field, i);
          const std::string_view trimmed = Trimmed(value);
          if (trimmed.size() != value.size()) {
            reflection->SetRepeatedString(message, field, i,
                                          std::string(trimmed));
          }
        }
      } else {
        const std::string value = reflection->GetString(*message, field);
        const std::string_view trimmed = Trimmed(value);
        if (trimmed.size() != value.size()) {
          reflection->SetString(message, field, std::string(trimmed));
        }
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (field->is_repeated()) {
        const int n = reflection->FieldSize(*message, field);
        for (int i = 0; i < n; ++i) {
          TrimStringsRecursively(
              reflection->MutableRepeatedMessage(message, field, i));
        }
      } else {
        TrimStringsRecursively(reflection->MutableMessage(message, field));
      }
    }
  }
}

void NormaliseAddress(Address* address) {
  if (std::optional<std::string> postcode =
          NormalisePostcode(address->postcode())) {
    address->set_postcode(*std::move(postcode));
  }
}

}  // namespace

bool IsCalendarDateAbsent(const CalendarDate& date) {
  return date.year() == 0 && date.month() == 0 && date.day() == 0;
}

std::optional<absl::CivilDay> CalendarDateToCivilDay(const CalendarDate& date) {
  if (IsCalendarDateAbsent(date)) return std::nullopt;
  FieldViolations ignored;
  return CheckCalendarDate("", date, ignored);
}

absl::Status ValidateSubmitReferralRequest(const SubmitReferralRequest& request,
                                           absl::Time now) {
  FieldViolations violations;
  CheckIdempotencyKey(request.idempotency_key(), violations);
  if (!request.has_referral()) {
    violations.Add("referral", "is required");
  } else {
    const absl::CivilDay today = absl::ToCivilDay(now, CivilTimeZone());
    CheckReferral(request.referral(), today, violations);
  }
  return violations.ToStatus();
}

void NormaliseReferral(Referral* referral) {
  TrimStringsRecursively(referral);
  for (Child& child : *referral->mutable_children()) {
    if (!child.nhs_number().empty()) {
      child.set_nhs_number(NormaliseNhsNumber(child.nhs_number()));
    }
    if (child.has_address()) NormaliseAddress(child.mutable_address());
  }
  for (Person& person : *referral->mutable_household_members()) {
    if (person.has_address()) NormaliseAddress(person.mutable_address());
  }
  for (Person& person : *referral->mutable_alleged_perpetrators()) {
    if (person.has_address()) NormaliseAddress(person.mutable_address());
  }
}

}  // namespace referral::server
