#include "json_schema.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "referral/v1/contract_limits.h"

namespace referral::clients {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsPlainInteger(absl::string_view s) {
  size_t i = !s.empty() && s[0] == '-' ? 1 : 0;
  if (i >= s.size()) return false;
  for (; i < s.size(); ++i) {
    if (!IsDigit(s[i])) return false;
  }
  return true;
}

// Whether a JSON number (or numeric string) fits the integer field type.
bool FitsInteger(absl::string_view number, FieldDescriptor::CppType type) {
  long double min = 0, max = 0;
  switch (type) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_ENUM:
      min = std::numeric_limits<int32_t>::min();
      max = std::numeric_limits<int32_t>::max();
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      max = std::numeric_limits<uint32_t>::max();
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      min = static_cast<long double>(std::numeric_limits<int64_t>::min());
      max = static_cast<long double>(std::numeric_limits<int64_t>::max());
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      max = static_cast<long double>(std::numeric_limits<uint64_t>::max());
      break;
    default:
      return false;
  }
  if (IsPlainInteger(number)) {
    // Exact for every width: parse as the widest signed or unsigned type.
    if (number[0] == '-') {
      int64_t v;
      return absl::SimpleAtoi(number, &v) && static_cast<long double>(v) >= min;
    }
    uint64_t v;
    return absl::SimpleAtoi(number, &v) && static_cast<long double>(v) <= max;
  }
  // 1e3 or 2.0: accepted when the value is a whole number in range.
  double d;
  if (!absl::SimpleAtod(number, &d) || !std::isfinite(d)) return false;
  return std::floor(d) == d && d >= min && d <= max;
}

// A short, printable rendering of a JSON key for an error message. Keys are
// field names, which may be quoted; values never are.
std::string SafeKey(absl::string_view key) {
  constexpr size_t kMax = 48;
  std::string shown = absl::CHexEscape(key.substr(0, kMax));
  if (key.size() > kMax) absl::StrAppend(&shown, "...");
  return absl::StrCat("\"", shown, "\"");
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  // Bounded inputs only: names are short, and long keys are not compared.
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Lower case without underscores or hyphens, so "agencyId", "agency_id" and
// "Agency-ID" compare equal.
std::string LooseForm(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '_' || c == '-' || c == ' ') continue;
    out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// The candidate closest to `given`, or "" when none is close enough to be a
// plausible typo.
std::string ClosestName(absl::string_view given,
                        const std::vector<std::string>& candidates) {
  if (given.size() > 80) return "";
  const std::string loose = LooseForm(given);
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const std::string& candidate : candidates) {
    const std::string loose_candidate = LooseForm(candidate);
    if (loose == loose_candidate) return candidate;
    const size_t d = EditDistance(loose, loose_candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  const size_t allowed = std::max<size_t>(2, loose.size() / 5);
  return best_distance <= allowed ? best : "";
}

std::string EnumNameHint(const EnumDescriptor* e, absl::string_view given) {
  std::vector<std::string> names;
  for (int i = 0; i < e->value_count(); ++i) {
    names.push_back(e->value(i)->name());
  }
  // A short form ("female" for SEX_FEMALE) first: it is what people write.
  std::string upper;
  for (char c : given.substr(0, 80)) {
    upper.push_back(c == '-' || c == ' '
                        ? '_'
                        : absl::ascii_toupper(static_cast<unsigned char>(c)));
  }
  std::string closest;
  for (const std::string& name : names) {
    if (!upper.empty() && absl::EndsWith(name, absl::StrCat("_", upper))) {
      closest = name;
      break;
    }
  }
  if (closest.empty()) closest = ClosestName(given, names);
  if (!closest.empty()) return absl::StrCat("; did you mean ", closest, "?");
  if (names.size() <= 8) {
    return absl::StrCat("; expected one of ", absl::StrJoin(names, ", "));
  }
  return absl::StrCat("; expected a name such as ", names[1], " (",
                      names.size(), " names in ", e->full_name(), ")");
}

bool IsWellKnown(const Descriptor* d) {
  return d->well_known_type() != Descriptor::WELLKNOWNTYPE_UNSPECIFIED;
}

absl::string_view Describe(JsonKind kind) {
  switch (kind) {
    case JsonKind::kObject:
      return "an object";
    case JsonKind::kArray:
      return "an array";
    case JsonKind::kString:
      return "a string";
    case JsonKind::kNumber:
      return "a number";
    case JsonKind::kBool:
      return "true or false";
  }
  return "a value";
}

std::string Expected(const Slot& slot) {
  const FieldDescriptor* f = slot.field;
  if (slot.kind == Slot::Kind::kField && f->is_repeated()) {
    return f->is_map() ? "an object" : "an array";
  }
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return IsWellKnown(f->message_type()) ? "a value" : "an object";
    case FieldDescriptor::CPPTYPE_STRING:
      return f->type() == FieldDescriptor::TYPE_BYTES ? "a base64 string"
                                                      : "a string";
    case FieldDescriptor::CPPTYPE_BOOL:
      return "true or false";
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return "a whole number";
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return "a number";
    case FieldDescriptor::CPPTYPE_ENUM:
      return absl::StrCat("a ", f->enum_type()->name(), " name in quotes");
  }
  return "a value";
}

}  // namespace

size_t JsonNumberLength(absl::string_view s) {
  size_t i = 0;
  const auto digits = [&] {
    const size_t from = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    return i > from;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return 0;
  }
  if (i + 1 < s.size() && s[i] == '.' && IsDigit(s[i + 1])) {
    ++i;
    digits();
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t e = i + 1;
    if (e < s.size() && (s[e] == '+' || s[e] == '-')) ++e;
    if (e < s.size() && IsDigit(s[e])) {
      i = e;
      digits();
    }
  }
  return i;
}

bool Slot::WantsArray() const {
  return kind == Kind::kField && field->is_repeated();
}

bool Slot::Unchecked() const {
  return kind == Kind::kUnchecked ||
         (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
          IsWellKnown(field->message_type()) && !WantsArray());
}

std::string Mismatch(const Slot& slot, JsonKind found) {
  return absl::StrCat("expected ", Expected(slot), ", found ", Describe(found));
}

std::string StringProblem(const Slot& slot, absl::string_view value) {
  if (slot.Unchecked()) return "";
  if (slot.WantsArray()) return Mismatch(slot, JsonKind::kString);
  const FieldDescriptor* f = slot.field;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      const uint32_t max_bytes = f->type() == FieldDescriptor::TYPE_STRING
                                     ? referral::v1::ValueByteLimit(*f)
                                     : 0;
      if (max_bytes > 0 && value.size() > max_bytes) {
        return absl::StrCat("must be at most ", max_bytes, " bytes");
      }
      return "";
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const EnumDescriptor* e = f->enum_type();
      if (e->FindValueByName(std::string(value)) != nullptr) return "";
      return absl::StrCat("unknown ", e->name(), " name",
                          EnumNameHint(e, value));
    }
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      // proto3 JSON allows integers as strings (needed for 64-bit values).
      if (IsPlainInteger(value) && FitsInteger(value, f->cpp_type())) {
        return "";
      }
      return absl::StrCat("expected a whole number that fits a ",
                          f->type_name());
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_DOUBLE:
      if (value == "NaN" || value == "Infinity" || value == "-Infinity" ||
          (!value.empty() && JsonNumberLength(value) == value.size())) {
        return "";
      }
      return Mismatch(slot, JsonKind::kString);
    default:
      return Mismatch(slot, JsonKind::kString);
  }
}

std::string NumberProblem(const Slot& slot, absl::string_view number) {
  if (slot.Unchecked()) return "";
  if (slot.WantsArray()) return Mismatch(slot, JsonKind::kNumber);
  const FieldDescriptor* f = slot.field;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      if (FitsInteger(number, f->cpp_type())) return "";
      return absl::StrCat("expected a whole number that fits a ",
                          f->type_name());
    case FieldDescriptor::CPPTYPE_ENUM:
      // proto3 enums are open: any int32 is carried; the broker decides.
      if (FitsInteger(number, f->cpp_type())) return "";
      return absl::StrCat("expected a ", f->enum_type()->name(),
                          " name in quotes");
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return "";
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double d;
      if (absl::SimpleAtod(number, &d) && std::isfinite(d) &&
          std::fabs(d) <= FLT_MAX) {
        return "";
      }
      return "number out of range for a float";
    }
    default:
      return Mismatch(slot, JsonKind::kNumber);
  }
}

std::string BoolProblem(const Slot& slot) {
  if (slot.Unchecked()) return "";
  if (!slot.WantsArray() &&
      slot.field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL) {
    return "";
  }
  return Mismatch(slot, JsonKind::kBool);
}

const FieldDescriptor* FindField(const Descriptor& message,
                                 absl::string_view key) {
  for (int i = 0; i < message.field_count(); ++i) {
    const FieldDescriptor* f = message.field(i);
    if (f->name() == key || f->json_name() == key) return f;
  }
  return nullptr;
}

std::string UnknownField(const Descriptor& message, absl::string_view key) {
  std::vector<std::string> names;
  for (int i = 0; i < message.field_count(); ++i) {
    names.push_back(message.field(i)->name());
  }
  const std::string closest = ClosestName(key, names);
  return absl::StrCat(
      "unknown field ", SafeKey(key), " (a ", message.full_name(),
      " has no field of that name",
      closest.empty() ? "" : absl::StrCat("; did you mean \"", closest, "\"?"),
      ")");
}

bool IsCheckedMessage(const FieldDescriptor& field) {
  return field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
         !IsWellKnown(field.message_type());
}

}  // namespace referral::clients
