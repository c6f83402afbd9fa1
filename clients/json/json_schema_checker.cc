#include "json_schema_checker.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "json_schema.h"
#include "nlohmann/json.hpp"
#include "referral/v1/contract_limits.h"

namespace referral::clients {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

bool IsJsonWhitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Token lengths, given the text from the token's start (which nlohmann has
// read, so a string there is closed).
size_t StringLength(absl::string_view s) {
  size_t i = 1;
  while (i < s.size() && s[i] != '"') i += s[i] == '\\' ? 2 : 1;
  return std::min(i + 1, s.size());
}
size_t OneByte(absl::string_view) { return 1; }
size_t TrueOrNull(absl::string_view) { return 4; }
size_t False(absl::string_view) { return 5; }

std::string JoinPath(absl::string_view parent, absl::string_view name) {
  return parent.empty() ? std::string(name) : absl::StrCat(parent, ".", name);
}

// An open object or array.
struct Frame {
  bool is_object = true;
  // Objects: the message they must match (null: unchecked).
  const Descriptor* message = nullptr;
  // Arrays: the repeated field whose elements they hold (null: unchecked),
  // and the contract's limit on their count (0: none).
  const FieldDescriptor* repeated = nullptr;
  uint32_t max_items = 0;
  std::string path;
  uint32_t next_index = 0;
  std::vector<int> seen_fields;  // field numbers, to catch repeats
};

// nlohmann's lexer problems inside a string token, by the fixed words of
// its message, with what is said instead (when the input ended there, if
// that differs) and how many bytes before the lexer's position the problem
// lies (-1: at the string's start).
struct LexerProblem {
  absl::string_view lexer_says;
  int back;
  absl::string_view say;
  absl::string_view say_at_end = "";
};
constexpr LexerProblem kLexerProblems[] = {
    {"missing closing quote", -1, "string is not closed (missing '\"')"},
    {"control character", 1,
     "control character in a string (write line breaks and tabs as \\n and "
     "\\t)"},
    {"forbidden character after backslash", 2,
     "invalid escape sequence (use \\\" \\\\ \\/ \\b \\f \\n \\r \\t or "
     "\\uXXXX)",
     "string is not closed (missing '\"')"},
    {"must be followed by 4 hex digits", 1,
     "a \\u escape needs four hexadecimal digits", "incomplete \\u escape"},
    {"must be followed by U+DC00", 1,
     "a \\u escape holds an unpaired high surrogate"},
    {"must follow U+D800", 1, "a \\u escape holds an unpaired low surrogate"},
    {"ill-formed UTF-8", 1, "invalid UTF-8 in a string"},
};

// nlohmann's SAX events carry no positions, so the checker follows the
// text itself: each event's token starts after the previous token's end,
// past whitespace and the one ',' or ':' between them, and ends where a
// token of its kind ends. nlohmann has read the text up to there, so this
// needs no checking. A syntax error is described from where the last good
// token ended and what may come next, never in nlohmann's words, which
// quote the input.
class SchemaChecker final : public nlohmann::json_sax<nlohmann::json> {
 public:
  SchemaChecker(absl::string_view text, const Descriptor& root, int max_depth)
      : text_(text), root_(root), max_depth_(max_depth) {}

  absl::Status Check();

  bool null() override;
  bool boolean(bool value) override;
  bool number_integer(number_integer_t) override { return Number(); }
  bool number_unsigned(number_unsigned_t) override { return Number(); }
  bool number_float(number_float_t, const string_t&) override {
    return Number();
  }
  bool string(string_t& value) override;
  bool binary(binary_t&) override { return true; }  // not in JSON text
  bool start_object(std::size_t) override { return Open(true); }
  bool key(string_t& key) override;
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(false); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::json::exception& error) override;

 private:
  // What may come after the last token read.
  enum class Expect { kKeyOrClose, kColon, kValueOrClose, kCommaOrClose, kEnd };

  absl::Status Error(size_t pos, absl::string_view path,
                     absl::string_view what) const;
  std::string DescribeAt(size_t pos) const;
  size_t SkipWhitespace(size_t pos) const {
    while (pos < text_.size() && IsJsonWhitespace(text_[pos])) ++pos;
    return pos;
  }
  // Moves past the current event's token, `length(text from its start)`
  // bytes long, and returns where it starts.
  size_t Advance(size_t (*length)(absl::string_view));
  // Records the outcome of an event; false (stop) on a problem.
  bool Done(const absl::Status& status, Expect next);

  // A scalar at `pos`: `problem(slot)` says what is wrong, if anything.
  template <typename Problem>
  bool Scalar(size_t pos, Problem problem);
  bool Number();
  bool Open(bool object);
  bool Close();
  // The slot of the value whose token starts at `pos`, counted against its
  // list's limit.
  absl::StatusOr<Slot> NextSlot(size_t pos);
  absl::Status OpenObject(size_t pos, const Slot& slot);
  absl::Status OpenArray(size_t pos, const Slot& slot);
  absl::Status ReadKey(size_t pos, const std::string& key);

  // `lexer_says` and `lexer_pos`: nlohmann's words (up to where they quote
  // the input) and where its lexer stopped.
  absl::Status Diagnose(absl::string_view lexer_says, size_t lexer_pos);
  absl::Status DiagnoseKey(size_t pos, absl::string_view lexer_says,
                           size_t lexer_pos) const;
  absl::Status DiagnoseValue(size_t pos, const Slot& slot,
                             absl::string_view lexer_says,
                             size_t lexer_pos) const;
  absl::Status DiagnoseString(size_t start, absl::string_view path,
                              absl::string_view lexer_says,
                              size_t lexer_pos) const;

  const absl::string_view text_;
  const Descriptor& root_;
  const int max_depth_;
  size_t end_ = 0;  // where the last token read ends
  Expect expect_ = Expect::kKeyOrClose;
  std::vector<Frame> stack_;
  Slot key_slot_;  // the slot the last key read names
  absl::Status error_;
};

absl::Status SchemaChecker::Error(size_t pos, absl::string_view path,
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
  return absl::InvalidArgumentError(
      absl::StrCat("line ", line, ", column ", column, ": ", path,
                   path.empty() ? "" : ": ", what));
}

std::string SchemaChecker::DescribeAt(size_t pos) const {
  if (pos >= text_.size()) return "the end of the input";
  const unsigned char c = static_cast<unsigned char>(text_[pos]);
  // JSON punctuation can be shown; anything else could be content.
  if (absl::string_view("{}[],:\"").find(static_cast<char>(c)) !=
      absl::string_view::npos) {
    return absl::StrCat("'", std::string(1, static_cast<char>(c)), "'");
  }
  if (absl::ascii_isdigit(c) || c == '-') return "a number";
  if (absl::ascii_isalpha(c)) return "a word without quotes";
  if (c < 0x20 || c == 0x7F) return "a control character";
  if (c >= 0x80) return "a non-ASCII character";
  return "a stray character";
}

absl::Status SchemaChecker::Check() {
  const size_t start = SkipWhitespace(0);
  if (start >= text_.size()) {
    return Error(start, "", "the input is empty; expected a JSON object");
  }
  if (text_[start] != '{') {
    return Error(
        start, "",
        absl::StrCat("expected a JSON object ('{') holding a ",
                     root_.full_name(), ", found ", DescribeAt(start)));
  }
  const bool parsed = nlohmann::json::sax_parse(
      text_.data(), text_.data() + text_.size(), this);
  if (!error_.ok()) return error_;
  // nlohmann takes a NUL byte for the end of the input.
  const size_t after = SkipWhitespace(end_);
  if (!parsed || after < text_.size()) {
    return Error(after, "",
                 "unexpected content after the end of the JSON object");
  }
  return absl::OkStatus();
}

size_t SchemaChecker::Advance(size_t (*length)(absl::string_view)) {
  size_t start = SkipWhitespace(end_);
  if (start < text_.size() && (text_[start] == ',' || text_[start] == ':')) {
    start = SkipWhitespace(start + 1);
  }
  end_ = start + length(text_.substr(start));
  return start;
}

bool SchemaChecker::Done(const absl::Status& status, Expect next) {
  expect_ = next;
  if (status.ok()) return true;
  error_ = status;
  return false;
}

template <typename Problem>
bool SchemaChecker::Scalar(size_t pos, Problem problem) {
  absl::StatusOr<Slot> slot = NextSlot(pos);
  if (!slot.ok()) return Done(slot.status(), Expect::kCommaOrClose);
  const std::string what = problem(*slot);
  return Done(what.empty() ? absl::OkStatus() : Error(pos, slot->path, what),
              Expect::kCommaOrClose);
}

bool SchemaChecker::null() {
  // null means "not set" for every field type; a list element cannot be
  // "not set" (protobuf would silently drop it).
  return Scalar(Advance(TrueOrNull), [](const Slot& slot) {
    return std::string(slot.kind == Slot::Kind::kElement
                           ? "null is not allowed in a list"
                           : "");
  });
}

bool SchemaChecker::boolean(bool value) {
  return Scalar(Advance(value ? TrueOrNull : False), BoolProblem);
}

bool SchemaChecker::Number() {
  const size_t pos = Advance(JsonNumberLength);
  const absl::string_view number = text_.substr(pos, end_ - pos);
  return Scalar(
      pos, [number](const Slot& slot) { return NumberProblem(slot, number); });
}

bool SchemaChecker::string(string_t& value) {
  return Scalar(Advance(StringLength), [&value](const Slot& slot) {
    return StringProblem(slot, value);
  });
}

bool SchemaChecker::key(string_t& key) {
  const size_t pos = Advance(StringLength);
  // The ':' first, as nlohmann will: without it the "key" may well be a
  // value that lost its field name, and must not be quoted as a key.
  const size_t colon = SkipWhitespace(end_);
  if (colon >= text_.size() || text_[colon] != ':') {
    return Done(Error(colon, stack_.back().path,
                      absl::StrCat("expected ':' after a field name, found ",
                                   DescribeAt(colon))),
                Expect::kColon);
  }
  return Done(ReadKey(pos, key), Expect::kColon);
}

bool SchemaChecker::Open(bool object) {
  const size_t pos = Advance(OneByte);
  const Expect next = object ? Expect::kKeyOrClose : Expect::kValueOrClose;
  if (stack_.empty()) {
    // The root object: Check made sure the text starts with one.
    Frame root;
    root.message = &root_;
    stack_.push_back(std::move(root));
    return Done(absl::OkStatus(), next);
  }
  absl::StatusOr<Slot> slot = NextSlot(pos);
  if (!slot.ok()) return Done(slot.status(), next);
  if (stack_.size() >= static_cast<size_t>(max_depth_)) {
    return Done(
        Error(pos, slot->path,
              absl::StrCat("nested more than ", max_depth_, " levels deep")),
        next);
  }
  return Done(object ? OpenObject(pos, *slot) : OpenArray(pos, *slot), next);
}

bool SchemaChecker::Close() {
  Advance(OneByte);
  stack_.pop_back();
  return Done(absl::OkStatus(),
              stack_.empty() ? Expect::kEnd : Expect::kCommaOrClose);
}

absl::StatusOr<Slot> SchemaChecker::NextSlot(size_t pos) {
  Frame& top = stack_.back();
  if (top.is_object) return key_slot_;
  if (top.max_items > 0 && top.next_index >= top.max_items) {
    return Error(pos, top.path,
                 absl::StrCat("must hold at most ", top.max_items, " items"));
  }
  Slot slot;
  slot.path = absl::StrCat(top.path, "[", top.next_index++, "]");
  if (top.repeated != nullptr) {
    slot.kind = Slot::Kind::kElement;
    slot.field = top.repeated;
  }
  return slot;
}

absl::Status SchemaChecker::ReadKey(size_t pos, const std::string& key) {
  Frame& top = stack_.back();
  key_slot_ = Slot();
  if (top.message == nullptr) {
    key_slot_.path = top.path;
    return absl::OkStatus();
  }
  const FieldDescriptor* field = FindField(*top.message, key);
  if (field == nullptr) {
    return Error(pos, top.path, UnknownField(*top.message, key));
  }
  if (std::find(top.seen_fields.begin(), top.seen_fields.end(),
                field->number()) != top.seen_fields.end()) {
    return Error(pos, JoinPath(top.path, field->name()),
                 "field given more than once");
  }
  top.seen_fields.push_back(field->number());
  key_slot_.kind = Slot::Kind::kField;
  key_slot_.field = field;
  key_slot_.path = JoinPath(top.path, field->name());
  return absl::OkStatus();
}

absl::Status SchemaChecker::OpenObject(size_t pos, const Slot& slot) {
  Frame frame;
  frame.path = slot.path;
  if (slot.kind != Slot::Kind::kUnchecked) {
    const FieldDescriptor* f = slot.field;
    if (slot.WantsArray() && f->is_map()) {
      // Map keys are data, not field names: left to protobuf.
    } else if (slot.WantsArray() ||
               f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      return Error(pos, slot.path, Mismatch(slot, JsonKind::kObject));
    } else if (IsCheckedMessage(*f)) {
      frame.message = f->message_type();
    }
  }
  stack_.push_back(std::move(frame));
  return absl::OkStatus();
}

absl::Status SchemaChecker::OpenArray(size_t pos, const Slot& slot) {
  Frame frame;
  frame.is_object = false;
  frame.path = slot.path;
  if (slot.kind != Slot::Kind::kUnchecked) {
    if (slot.WantsArray() && !slot.field->is_map()) {
      frame.repeated = slot.field;
      frame.max_items = referral::v1::LimitsOf(*slot.field).max_items;
    } else if (!slot.Unchecked()) {
      // Arrays of arrays, or an array for a singular field.
      return Error(pos, slot.path, Mismatch(slot, JsonKind::kArray));
    }
  }
  stack_.push_back(std::move(frame));
  return absl::OkStatus();
}

bool SchemaChecker::parse_error(std::size_t position, const std::string&,
                                const nlohmann::json::exception& error) {
  // The lexer's own words stop where nlohmann starts quoting the input.
  absl::string_view lexer_says = error.what();
  lexer_says = lexer_says.substr(0, lexer_says.find("; last read:"));
  error_ = Diagnose(lexer_says, position);
  return false;
}

absl::Status SchemaChecker::Diagnose(absl::string_view lexer_says,
                                     size_t lexer_pos) {
  const size_t pos = SkipWhitespace(end_);
  if (expect_ == Expect::kEnd || stack_.empty()) {
    return Error(pos, "",
                 "unexpected content after the end of the JSON object");
  }
  const Frame& top = stack_.back();
  const char close = top.is_object ? '}' : ']';
  switch (expect_) {
    case Expect::kKeyOrClose:
      return DiagnoseKey(pos, lexer_says, lexer_pos);
    case Expect::kColon:
      if (pos >= text_.size() || text_[pos] != ':') {
        return Error(pos, top.path,
                     absl::StrCat("expected ':' after a field name, found ",
                                  DescribeAt(pos)));
      }
      return DiagnoseValue(SkipWhitespace(pos + 1), key_slot_, lexer_says,
                           lexer_pos);
    case Expect::kValueOrClose: {
      absl::StatusOr<Slot> slot = NextSlot(pos);
      if (!slot.ok()) return slot.status();
      return DiagnoseValue(pos, *slot, lexer_says, lexer_pos);
    }
    default:
      break;
  }
  // After a value.
  if (pos >= text_.size()) {
    return Error(pos, top.path,
                 absl::StrCat("unexpected end of input; expected ',' or '",
                              std::string(1, close), "'"));
  }
  if (text_[pos] != ',') {
    return Error(
        pos, top.path,
        absl::StrCat("expected ',' or '", std::string(1, close), "' after ",
                     top.is_object ? "a field's value" : "an array element",
                     ", found ", DescribeAt(pos)));
  }
  const size_t next = SkipWhitespace(pos + 1);
  if (next < text_.size() && text_[next] == close) {
    return Error(
        next, top.path,
        absl::StrCat("trailing comma before '", std::string(1, close), "'"));
  }
  if (top.is_object) return DiagnoseKey(next, lexer_says, lexer_pos);
  absl::StatusOr<Slot> slot = NextSlot(next);
  if (!slot.ok()) return slot.status();
  return DiagnoseValue(next, *slot, lexer_says, lexer_pos);
}

absl::Status SchemaChecker::DiagnoseKey(size_t pos,
                                        absl::string_view lexer_says,
                                        size_t lexer_pos) const {
  const std::string& path = stack_.back().path;
  if (pos >= text_.size() || text_[pos] != '"') {
    return Error(pos, path,
                 absl::StrCat("expected a field name in double quotes, found ",
                              DescribeAt(pos)));
  }
  return DiagnoseString(pos, path, lexer_says, lexer_pos);
}

absl::Status SchemaChecker::DiagnoseValue(size_t pos, const Slot& slot,
                                          absl::string_view lexer_says,
                                          size_t lexer_pos) const {
  if (pos >= text_.size()) {
    return Error(pos, slot.path, "unexpected end of input; expected a value");
  }
  const unsigned char c = static_cast<unsigned char>(text_[pos]);
  if (c == '"') return DiagnoseString(pos, slot.path, lexer_says, lexer_pos);
  if (c == '-' || absl::ascii_isdigit(c)) {
    if (!absl::StrContains(lexer_says, "number overflow")) {
      return Error(pos, slot.path, "malformed number");
    }
    // Read, but too large for a double (1e400): wrong for this field.
    const std::string what = NumberProblem(
        slot, text_.substr(pos, JsonNumberLength(text_.substr(pos))));
    return Error(pos, slot.path, what.empty() ? "number out of range" : what);
  }
  const bool word = c == '\'' || absl::ascii_isalpha(c);
  return Error(pos, slot.path,
               absl::StrCat("expected a value, found ", DescribeAt(pos),
                            word ? " (strings need double quotes)" : ""));
}

absl::Status SchemaChecker::DiagnoseString(size_t start, absl::string_view path,
                                           absl::string_view lexer_says,
                                           size_t lexer_pos) const {
  const bool at_end = lexer_pos > text_.size();
  for (const LexerProblem& problem : kLexerProblems) {
    if (!absl::StrContains(lexer_says, problem.lexer_says)) continue;
    if (at_end && !problem.say_at_end.empty()) {
      return Error(start, path, problem.say_at_end);
    }
    const bool at_start = problem.back < 0 || lexer_pos < start + problem.back;
    return Error(at_start ? start : lexer_pos - problem.back, path,
                 problem.say);
  }
  return Error(start, path, "the string cannot be read");
}

}  // namespace

absl::Status CheckJsonAgainstSchema(absl::string_view text,
                                    const Descriptor& root, int max_depth) {
  return SchemaChecker(text, root, max_depth).Check();
}

}  // namespace referral::clients
