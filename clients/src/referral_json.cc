#include "referral_json.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"

namespace referral::clients {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;

// ---------------------------------------------------------------------------
// Small helpers that never look at more than they are given.

bool IsJsonWhitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Length of the well-formed UTF-8 sequence starting at text[pos] (a
// non-ASCII lead byte), or 0 when it is not well formed (overlong forms,
// surrogates and code points above U+10FFFF included).
size_t Utf8SequenceLength(absl::string_view text, size_t pos) {
  auto byte = [&](size_t i) -> int {
    return i < text.size() ? static_cast<unsigned char>(text[i]) : -1;
  };
  auto in = [](int b, int lo, int hi) { return b >= lo && b <= hi; };
  const int b0 = byte(pos);
  const int b1 = byte(pos + 1);
  if (in(b0, 0xC2, 0xDF)) return in(b1, 0x80, 0xBF) ? 2 : 0;
  const int b2 = byte(pos + 2);
  if (in(b0, 0xE0, 0xEF)) {
    const int lo = b0 == 0xE0 ? 0xA0 : 0x80;
    const int hi = b0 == 0xED ? 0x9F : 0xBF;
    return in(b1, lo, hi) && in(b2, 0x80, 0xBF) ? 3 : 0;
  }
  const int b3 = byte(pos + 3);
  if (in(b0, 0xF0, 0xF4)) {
    const int lo = b0 == 0xF0 ? 0x90 : 0x80;
    const int hi = b0 == 0xF4 ? 0x8F : 0xBF;
    return in(b1, lo, hi) && in(b2, 0x80, 0xBF) && in(b3, 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Length of the JSON number at the start of `s` (RFC 8259 grammar), or 0.
size_t JsonNumberLength(absl::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size() || !IsDigit(s[i])) return 0;
  if (s[i] == '0') {
    ++i;
  } else {
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i >= s.size() || !IsDigit(s[i])) return 0;
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= s.size() || !IsDigit(s[i])) return 0;
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  return i;
}

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

std::string EnumTypeName(const EnumDescriptor* e) { return e->full_name(); }

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
                      names.size(), " names in ", EnumTypeName(e), ")");
}

const FieldDescriptor* FindField(const Descriptor* message,
                                 absl::string_view key) {
  for (int i = 0; i < message->field_count(); ++i) {
    const FieldDescriptor* f = message->field(i);
    if (f->name() == key || f->json_name() == key) return f;
  }
  return nullptr;
}

std::string FieldNameHint(const Descriptor* message, absl::string_view key) {
  std::vector<std::string> names;
  for (int i = 0; i < message->field_count(); ++i) {
    names.push_back(message->field(i)->name());
  }
  const std::string closest = ClosestName(key, names);
  if (closest.empty()) return "";
  return absl::StrCat("; did you mean \"", closest, "\"?");
}

bool IsWellKnown(const Descriptor* d) {
  return d->well_known_type() != Descriptor::WELLKNOWNTYPE_UNSPECIFIED;
}

std::string JoinPath(absl::string_view parent, absl::string_view name) {
  return parent.empty() ? std::string(name) : absl::StrCat(parent, ".", name);
}

// What the JSON value in a given place must be, according to the schema.
struct Slot {
  enum class Kind {
    kUnchecked,  // no schema here (inside a well-known type or a map)
    kField,      // the value of a singular or repeated field
    kElement,    // one element of a repeated field
  };
  Kind kind = Kind::kUnchecked;
  const FieldDescriptor* field = nullptr;
  std::string path;
};

// An open object or array.
struct Frame {
  bool is_object = true;
  // Objects: the message they must match (null: unchecked).
  const Descriptor* message = nullptr;
  // Arrays: the repeated field whose elements they hold (null: unchecked).
  const FieldDescriptor* repeated = nullptr;
  std::string path;
  int next_index = 0;
  std::vector<int> seen_fields;  // field numbers, to catch repeats
};

// What a JSON value looks like, for "expected X, found Y".
enum class JsonKind { kObject, kArray, kString, kNumber, kBool };

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

// ---------------------------------------------------------------------------
// The checker: one pass over the text with an explicit stack, so that
// neither deep nesting nor long input can exhaust the call stack.

class JsonChecker {
 public:
  JsonChecker(absl::string_view text, const Descriptor* root)
      : text_(text), root_(root) {}

  absl::Status Check();

 private:
  absl::Status Error(size_t pos, absl::string_view path,
                     absl::string_view what) const;
  std::string DescribeAt(size_t pos) const;
  void SkipWhitespace() {
    while (pos_ < text_.size() && IsJsonWhitespace(text_[pos_])) ++pos_;
  }
  bool AtEnd() const { return pos_ >= text_.size(); }

  // Reads one value for `slot`. For '{' and '[' it only opens the
  // container (pushing a frame) and sets *opened.
  absl::Status ReadValue(const Slot& slot, bool* opened);
  absl::Status OpenObject(const Slot& slot);
  absl::Status OpenArray(const Slot& slot);
  // Reads `"key":` in the innermost object and sets *slot to its value.
  absl::Status ReadKey(Slot* slot);
  Slot NextElement(Frame& array);

  absl::Status ScanString(absl::string_view path, std::string* decoded);
  absl::Status ScanHex4(absl::string_view path, uint32_t* value);

  absl::Status Mismatch(size_t pos, const Slot& slot, JsonKind found) const {
    return Error(
        pos, slot.path,
        absl::StrCat("expected ", Expected(slot), ", found ", Describe(found)));
  }
  absl::Status CheckString(size_t pos, const Slot& slot,
                           absl::string_view value) const;
  absl::Status CheckNumber(size_t pos, const Slot& slot,
                           absl::string_view number) const;
  absl::Status CheckBool(size_t pos, const Slot& slot) const;
  // Scalars are fine anywhere unchecked and in well-known message types
  // (a Timestamp is a string); elsewhere a message wants an object.
  bool Unchecked(const Slot& slot) const {
    return slot.kind == Slot::Kind::kUnchecked ||
           (slot.field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
            IsWellKnown(slot.field->message_type()) &&
            !(slot.kind == Slot::Kind::kField && slot.field->is_repeated()));
  }
  bool WantsArray(const Slot& slot) const {
    return slot.kind == Slot::Kind::kField && slot.field->is_repeated();
  }

  absl::string_view text_;
  const Descriptor* root_;
  size_t pos_ = 0;
  std::vector<Frame> stack_;
};

absl::Status JsonChecker::Error(size_t pos, absl::string_view path,
                                absl::string_view what) const {
  pos = std::min(pos, text_.size());
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < pos; ++i) {
    if (text_[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  // Columns count characters, not bytes, as editors do.
  size_t column = 1;
  for (size_t i = line_start; i < pos; ++i) {
    if ((static_cast<unsigned char>(text_[i]) & 0xC0) != 0x80) ++column;
  }
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", line, ", column ", column, ": ", what));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("line ", line, ", column ", column, ": ", path, ": ", what));
}

std::string JsonChecker::DescribeAt(size_t pos) const {
  if (pos >= text_.size()) return "the end of the input";
  const unsigned char c = static_cast<unsigned char>(text_[pos]);
  // JSON punctuation can be shown; anything else could be content.
  if (absl::string_view("{}[],:\"").find(static_cast<char>(c)) !=
      absl::string_view::npos) {
    return absl::StrCat("'", std::string(1, static_cast<char>(c)), "'");
  }
  if (IsDigit(static_cast<char>(c)) || c == '-') return "a number";
  if (absl::ascii_isalpha(c)) return "a word without quotes";
  if (c < 0x20 || c == 0x7F) return "a control character";
  if (c >= 0x80) return "a non-ASCII character";
  return "a stray character";
}

absl::Status JsonChecker::Check() {
  SkipWhitespace();
  if (AtEnd()) {
    return Error(pos_, "", "the input is empty; expected a JSON object");
  }
  if (text_[pos_] != '{') {
    return Error(
        pos_, "",
        absl::StrCat("expected a JSON object ('{') holding a ",
                     root_->full_name(), ", found ", DescribeAt(pos_)));
  }
  // The root object; every later value is reached through a field.
  Frame root;
  root.message = root_;
  stack_.push_back(std::move(root));
  ++pos_;
  Slot slot;
  bool need_value = false;
  SkipWhitespace();
  if (!AtEnd() && text_[pos_] == '}') {
    ++pos_;
    stack_.pop_back();
  } else {
    absl::Status s = ReadKey(&slot);
    if (!s.ok()) return s;
    need_value = true;
  }

  while (true) {
    if (need_value) {
      SkipWhitespace();
      bool opened = false;
      absl::Status s = ReadValue(slot, &opened);
      if (!s.ok()) return s;
      need_value = false;
      if (opened) {
        SkipWhitespace();
        Frame& top = stack_.back();
        const char close = top.is_object ? '}' : ']';
        if (!AtEnd() && text_[pos_] == close) {
          ++pos_;
          stack_.pop_back();
        } else if (top.is_object) {
          s = ReadKey(&slot);
          if (!s.ok()) return s;
          need_value = true;
          continue;
        } else {
          slot = NextElement(top);
          need_value = true;
          continue;
        }
      }
    }
    // A value is complete; what follows it?
    SkipWhitespace();
    if (stack_.empty()) {
      if (!AtEnd()) {
        return Error(pos_, "",
                     "unexpected content after the end of the JSON object");
      }
      return absl::OkStatus();
    }
    Frame& top = stack_.back();
    const char close = top.is_object ? '}' : ']';
    if (AtEnd()) {
      return Error(pos_, top.path,
                   absl::StrCat("unexpected end of input; expected ',' or '",
                                std::string(1, close), "'"));
    }
    const char c = text_[pos_];
    if (c == close) {
      ++pos_;
      stack_.pop_back();
      continue;
    }
    if (c != ',') {
      return Error(
          pos_, top.path,
          absl::StrCat("expected ',' or '", std::string(1, close), "' after ",
                       top.is_object ? "a field's value" : "an array element",
                       ", found ", DescribeAt(pos_)));
    }
    ++pos_;
    SkipWhitespace();
    if (!AtEnd() && text_[pos_] == close) {
      return Error(
          pos_, top.path,
          absl::StrCat("trailing comma before '", std::string(1, close), "'"));
    }
    if (top.is_object) {
      absl::Status s = ReadKey(&slot);
      if (!s.ok()) return s;
    } else {
      slot = NextElement(top);
    }
    need_value = true;
  }
}

Slot JsonChecker::NextElement(Frame& array) {
  Slot slot;
  slot.path = absl::StrCat(array.path, "[", array.next_index++, "]");
  if (array.repeated != nullptr) {
    slot.kind = Slot::Kind::kElement;
    slot.field = array.repeated;
  }
  return slot;
}

absl::Status JsonChecker::ReadKey(Slot* slot) {
  Frame& top = stack_.back();
  const size_t key_pos = pos_;
  if (AtEnd() || text_[pos_] != '"') {
    return Error(pos_, top.path,
                 absl::StrCat("expected a field name in double quotes, found ",
                              DescribeAt(pos_)));
  }
  std::string key;
  absl::Status s = ScanString(top.path, &key);
  if (!s.ok()) return s;
  SkipWhitespace();
  if (AtEnd() || text_[pos_] != ':') {
    return Error(pos_, top.path,
                 absl::StrCat("expected ':' after a field name, found ",
                              DescribeAt(pos_)));
  }
  ++pos_;
  *slot = Slot();
  if (top.message == nullptr) {
    slot->path = top.path;
    return absl::OkStatus();
  }
  const FieldDescriptor* field = FindField(top.message, key);
  if (field == nullptr) {
    return Error(
        key_pos, top.path,
        absl::StrCat("unknown field ", SafeKey(key), " (a ",
                     top.message->full_name(), " has no field of that name",
                     FieldNameHint(top.message, key), ")"));
  }
  if (std::find(top.seen_fields.begin(), top.seen_fields.end(),
                field->number()) != top.seen_fields.end()) {
    return Error(key_pos, JoinPath(top.path, field->name()),
                 "field given more than once");
  }
  top.seen_fields.push_back(field->number());
  slot->kind = Slot::Kind::kField;
  slot->field = field;
  slot->path = JoinPath(top.path, field->name());
  return absl::OkStatus();
}

absl::Status JsonChecker::ReadValue(const Slot& slot, bool* opened) {
  *opened = false;
  if (AtEnd()) {
    return Error(pos_, slot.path, "unexpected end of input; expected a value");
  }
  const size_t start = pos_;
  const char c = text_[pos_];
  switch (c) {
    case '{':
      *opened = true;
      return OpenObject(slot);
    case '[':
      *opened = true;
      return OpenArray(slot);
    case '"': {
      std::string value;
      absl::Status s = ScanString(slot.path, &value);
      if (!s.ok()) return s;
      return CheckString(start, slot, value);
    }
    case 't':
    case 'f': {
      const absl::string_view word = c == 't' ? "true" : "false";
      if (!absl::StartsWith(text_.substr(pos_), word)) break;
      pos_ += word.size();
      return CheckBool(start, slot);
    }
    case 'n':
      // null means "not set" for every field type; a list element cannot
      // be "not set" (protobuf would silently drop it).
      if (!absl::StartsWith(text_.substr(pos_), "null")) break;
      if (slot.kind == Slot::Kind::kElement) {
        return Error(pos_, slot.path, "null is not allowed in a list");
      }
      pos_ += 4;
      return absl::OkStatus();
    default:
      if (c == '-' || IsDigit(c)) {
        const size_t length = JsonNumberLength(text_.substr(pos_));
        if (length == 0) {
          return Error(pos_, slot.path, "malformed number");
        }
        const absl::string_view number = text_.substr(pos_, length);
        pos_ += length;
        return CheckNumber(start, slot, number);
      }
      break;
  }
  return Error(pos_, slot.path,
               absl::StrCat("expected a value, found ", DescribeAt(pos_),
                            c == '\'' || absl::ascii_isalpha(
                                             static_cast<unsigned char>(c))
                                ? " (strings need double quotes)"
                                : ""));
}

absl::Status JsonChecker::OpenObject(const Slot& slot) {
  if (stack_.size() >= static_cast<size_t>(kMaxJsonDepth)) {
    return Error(
        pos_, slot.path,
        absl::StrCat("nested more than ", kMaxJsonDepth, " levels deep"));
  }
  Frame frame;
  frame.is_object = true;
  frame.path = slot.path;
  if (slot.kind != Slot::Kind::kUnchecked) {
    const FieldDescriptor* f = slot.field;
    const bool whole_field = slot.kind == Slot::Kind::kField;
    if (whole_field && f->is_map()) {
      // Map keys are data, not field names: left to protobuf.
    } else if (whole_field && f->is_repeated()) {
      return Mismatch(pos_, slot, JsonKind::kObject);
    } else if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      return Mismatch(pos_, slot, JsonKind::kObject);
    } else if (!IsWellKnown(f->message_type())) {
      frame.message = f->message_type();
    }
  }
  ++pos_;
  stack_.push_back(std::move(frame));
  return absl::OkStatus();
}

absl::Status JsonChecker::OpenArray(const Slot& slot) {
  if (stack_.size() >= static_cast<size_t>(kMaxJsonDepth)) {
    return Error(
        pos_, slot.path,
        absl::StrCat("nested more than ", kMaxJsonDepth, " levels deep"));
  }
  Frame frame;
  frame.is_object = false;
  frame.path = slot.path;
  if (slot.kind != Slot::Kind::kUnchecked) {
    const FieldDescriptor* f = slot.field;
    if (WantsArray(slot) && !f->is_map()) {
      frame.repeated = f;
    } else if (!Unchecked(slot)) {
      // Arrays of arrays, or an array for a singular field.
      return Mismatch(pos_, slot, JsonKind::kArray);
    }
  }
  ++pos_;
  stack_.push_back(std::move(frame));
  return absl::OkStatus();
}

absl::Status JsonChecker::ScanHex4(absl::string_view path, uint32_t* value) {
  if (pos_ + 4 > text_.size()) {
    return Error(pos_, path, "incomplete \\u escape");
  }
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    const char h = text_[pos_ + i];
    v <<= 4;
    if (h >= '0' && h <= '9') {
      v |= h - '0';
    } else if (h >= 'a' && h <= 'f') {
      v |= h - 'a' + 10;
    } else if (h >= 'A' && h <= 'F') {
      v |= h - 'A' + 10;
    } else {
      return Error(pos_ + i, path,
                   "a \\u escape needs four hexadecimal digits");
    }
  }
  pos_ += 4;
  *value = v;
  return absl::OkStatus();
}

absl::Status JsonChecker::ScanString(absl::string_view path,
                                     std::string* decoded) {
  const size_t start = pos_;
  ++pos_;  // the opening quote
  decoded->clear();
  while (true) {
    if (AtEnd()) {
      return Error(start, path, "string is not closed (missing '\"')");
    }
    const unsigned char c = static_cast<unsigned char>(text_[pos_]);
    if (c == '"') {
      ++pos_;
      return absl::OkStatus();
    }
    if (c == '\\') {
      const size_t escape_pos = pos_;
      ++pos_;
      if (AtEnd()) {
        return Error(start, path, "string is not closed (missing '\"')");
      }
      const char e = text_[pos_++];
      switch (e) {
        case '"':
          decoded->push_back('"');
          break;
        case '\\':
          decoded->push_back('\\');
          break;
        case '/':
          decoded->push_back('/');
          break;
        case 'b':
          decoded->push_back('\b');
          break;
        case 'f':
          decoded->push_back('\f');
          break;
        case 'n':
          decoded->push_back('\n');
          break;
        case 'r':
          decoded->push_back('\r');
          break;
        case 't':
          decoded->push_back('\t');
          break;
        case 'u': {
          uint32_t cp;
          absl::Status s = ScanHex4(path, &cp);
          if (!s.ok()) return s;
          if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Error(escape_pos, path,
                         "a \\u escape holds an unpaired low surrogate");
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!absl::StartsWith(text_.substr(pos_), "\\u")) {
              return Error(escape_pos, path,
                           "a \\u escape holds an unpaired high surrogate");
            }
            pos_ += 2;
            uint32_t low;
            s = ScanHex4(path, &low);
            if (!s.ok()) return s;
            if (low < 0xDC00 || low > 0xDFFF) {
              return Error(escape_pos, path,
                           "a \\u escape holds an unpaired high surrogate");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(cp, decoded);
          break;
        }
        default:
          return Error(escape_pos, path,
                       "invalid escape sequence (use \\\" \\\\ \\/ \\b \\f "
                       "\\n \\r \\t or \\uXXXX)");
      }
      continue;
    }
    if (c < 0x20) {
      return Error(pos_, path,
                   "control character in a string (write line breaks and "
                   "tabs as \\n and \\t)");
    }
    if (c < 0x80) {
      decoded->push_back(static_cast<char>(c));
      ++pos_;
      continue;
    }
    const size_t length = Utf8SequenceLength(text_, pos_);
    if (length == 0) {
      return Error(pos_, path, "invalid UTF-8 in a string");
    }
    decoded->append(text_.data() + pos_, length);
    pos_ += length;
  }
}

absl::Status JsonChecker::CheckString(size_t pos, const Slot& slot,
                                      absl::string_view value) const {
  if (Unchecked(slot)) return absl::OkStatus();
  if (WantsArray(slot)) return Mismatch(pos, slot, JsonKind::kString);
  const FieldDescriptor* f = slot.field;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_ENUM: {
      const EnumDescriptor* e = f->enum_type();
      if (e->FindValueByName(std::string(value)) != nullptr) {
        return absl::OkStatus();
      }
      return Error(
          pos, slot.path,
          absl::StrCat("unknown ", e->name(), " name", EnumNameHint(e, value)));
    }
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      // proto3 JSON allows integers as strings (needed for 64-bit values).
      if (IsPlainInteger(value) && FitsInteger(value, f->cpp_type())) {
        return absl::OkStatus();
      }
      return Error(
          pos, slot.path,
          absl::StrCat("expected a whole number that fits a ", f->type_name()));
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_DOUBLE:
      if (value == "NaN" || value == "Infinity" || value == "-Infinity" ||
          (!value.empty() && JsonNumberLength(value) == value.size())) {
        return absl::OkStatus();
      }
      return Mismatch(pos, slot, JsonKind::kString);
    default:
      return Mismatch(pos, slot, JsonKind::kString);
  }
}

absl::Status JsonChecker::CheckNumber(size_t pos, const Slot& slot,
                                      absl::string_view number) const {
  if (Unchecked(slot)) return absl::OkStatus();
  if (WantsArray(slot)) return Mismatch(pos, slot, JsonKind::kNumber);
  const FieldDescriptor* f = slot.field;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      if (FitsInteger(number, f->cpp_type())) return absl::OkStatus();
      return Error(
          pos, slot.path,
          absl::StrCat("expected a whole number that fits a ", f->type_name()));
    case FieldDescriptor::CPPTYPE_ENUM:
      // proto3 enums are open: any int32 is carried; the broker decides.
      if (FitsInteger(number, f->cpp_type())) return absl::OkStatus();
      return Error(pos, slot.path,
                   absl::StrCat("expected a ", f->enum_type()->name(),
                                " name in quotes"));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double d;
      if (absl::SimpleAtod(number, &d) && std::isfinite(d) &&
          std::fabs(d) <= FLT_MAX) {
        return absl::OkStatus();
      }
      return Error(pos, slot.path, "number out of range for a float");
    }
    default:
      return Mismatch(pos, slot, JsonKind::kNumber);
  }
}

absl::Status JsonChecker::CheckBool(size_t pos, const Slot& slot) const {
  if (Unchecked(slot)) return absl::OkStatus();
  if (WantsArray(slot)) return Mismatch(pos, slot, JsonKind::kBool);
  if (slot.field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL) {
    return absl::OkStatus();
  }
  return Mismatch(pos, slot, JsonKind::kBool);
}

// protobuf's messages quote the input. Keep only a field path of the form
// "(a.b[0].c)" when there is one.
absl::Status SanitizedProtobufError(absl::string_view message,
                                    const Descriptor* root) {
  std::string path;
  if (absl::StartsWith(message, "(")) {
    const size_t close = message.find(')');
    if (close != absl::string_view::npos) {
      const absl::string_view candidate = message.substr(1, close - 1);
      const bool safe =
          !candidate.empty() && candidate.size() <= 200 &&
          std::all_of(candidate.begin(), candidate.end(), [](char c) {
            return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                   c == '_' || c == '.' || c == '[' || c == ']';
          });
      if (safe) path = std::string(candidate);
    }
  }
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the JSON could not be read as a ", root->full_name(),
        " (protobuf's details are withheld because they quote the content)"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": value not accepted for this field"));
}

}  // namespace

absl::Status ParseJsonMessage(absl::string_view json,
                              google::protobuf::Message* message) {
  message->Clear();
  if (json.size() > kMaxJsonBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the input is larger than ", kMaxJsonBytes / 1024 / 1024, " MiB"));
  }
  // Editors on Windows like to start UTF-8 files with a byte-order mark.
  if (absl::StartsWith(json, "\xEF\xBB\xBF")) json.remove_prefix(3);
  const Descriptor* root = message->GetDescriptor();
  absl::Status checked = JsonChecker(json, root).Check();
  if (!checked.ok()) return checked;

  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message,
      options);
  if (!status.ok()) {
    message->Clear();
    return SanitizedProtobufError(
        absl::string_view(status.message().data(), status.message().size()),
        root);
  }
  return absl::OkStatus();
}

absl::StatusOr<referral::v1::Referral> ParseReferralJson(
    absl::string_view json) {
  referral::v1::Referral referral;
  absl::Status status = ParseJsonMessage(json, &referral);
  if (!status.ok()) return status;
  return referral;
}

absl::StatusOr<std::string> ReadFileOrStdin(const std::string& path) {
  const bool from_stdin = path == "-";
  const std::string label = from_stdin ? "<stdin>" : path;
  int fd = STDIN_FILENO;
  if (!from_stdin) {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      return absl::Status(
          absl::ErrnoToStatusCode(error),
          absl::StrCat("cannot open ", label, ": ", std::strerror(error)));
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(label, " is a directory, not a file"));
    }
  }
  std::string content;
  char buffer[64 * 1024];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      if (!from_stdin) close(fd);
      return absl::Status(
          absl::ErrnoToStatusCode(error),
          absl::StrCat("cannot read ", label, ": ", std::strerror(error)));
    }
    content.append(buffer, static_cast<size_t>(n));
    if (content.size() > kMaxJsonBytes) {
      if (!from_stdin) close(fd);
      return absl::InvalidArgumentError(absl::StrCat(
          label, " is larger than ", kMaxJsonBytes / 1024 / 1024, " MiB"));
    }
  }
  if (!from_stdin) close(fd);
  return content;
}

absl::StatusOr<referral::v1::Referral> LoadReferralJson(
    const std::string& path) {
  absl::StatusOr<std::string> content = ReadFileOrStdin(path);
  if (!content.ok()) return content.status();
  absl::StatusOr<referral::v1::Referral> referral = ParseReferralJson(*content);
  if (!referral.ok()) {
    return absl::Status(referral.status().code(),
                        absl::StrCat(path == "-" ? "<stdin>" : path, ": ",
                                     referral.status().message()));
  }
  return referral;
}

}  // namespace referral::clients
