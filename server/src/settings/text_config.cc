#include "settings/text_config.h"

#include <cstddef>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/io/tokenizer.h"

namespace referral::server {
namespace {

// Debian's Abseil has its own string_view, distinct from std's, and
// absl::StrCat only takes its own.
absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

// Collects text-format syntax errors as "<source>:<line>:<column>: reason".
class SourceErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  explicit SourceErrorCollector(std::string_view source) : source_(source) {}

  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    // The parser counts from 0; editors count from 1.
    errors_.push_back(
        absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message));
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

}  // namespace

absl::StatusOr<std::string> ReadConfigFile(std::string_view path) {
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) {
    return absl::NotFoundError(absl::StrCat(Absl(path), ": cannot open file"));
  }
  // istream::read turns a read error (a directory opens but cannot be read)
  // into badbit; istreambuf_iterator would let the exception escape.
  std::string contents;
  char buffer[8192];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    contents.append(buffer, static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) {
    return absl::NotFoundError(absl::StrCat(Absl(path), ": cannot read file"));
  }
  return contents;
}

absl::Status ParseTextConfig(std::string_view text, std::string_view source,
                             google::protobuf::Message* out,
                             ConfigParseTree* tree) {
  SourceErrorCollector collector(source);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  if (tree != nullptr) parser.WriteLocationsTo(tree);
  if (!parser.ParseFromString(std::string(text), out)) {
    // A failed parse always reports at least one error; the fallback only
    // guards against an empty, unlocated message.
    if (collector.errors().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Absl(source), ": not a valid text-format file"));
    }
    return absl::InvalidArgumentError(absl::StrJoin(collector.errors(), "; "));
  }
  return absl::OkStatus();
}

ConfigLocation ConfigLocator::Field(const char* name, int index) const {
  if (tree_ == nullptr) return self_;
  const google::protobuf::FieldDescriptor* field = type_->FindFieldByName(name);
  if (field == nullptr) return self_;
  ConfigLocation at = tree_->GetLocation(field, index);
  // A list literal (`f: ["a", "b"]`) records one location for the field,
  // not one per value.
  if (at.line < 0 && index > 0) at = tree_->GetLocation(field, 0);
  return at.line >= 0 ? at : self_;
}

ConfigLocator ConfigLocator::Nested(const char* name, int index) const {
  const google::protobuf::FieldDescriptor* field = type_->FindFieldByName(name);
  const ConfigLocation at = Field(name, index);
  if (field == nullptr || field->message_type() == nullptr) {
    // Not a message field (a caller's typo): keep pointing at this message.
    return ConfigLocator(nullptr, type_, at);
  }
  return ConfigLocator(
      tree_ == nullptr ? nullptr : tree_->GetTreeForNested(field, index),
      field->message_type(), at);
}

void ConfigErrors::Add(ConfigLocation where, std::string_view field_path,
                       std::string_view reason) {
  std::string error;
  if (!source_.empty()) {
    error = where.line >= 0 ? absl::StrCat(source_, ":", where.line + 1, ":",
                                           where.column + 1, ": ")
                            : absl::StrCat(source_, ": ");
  }
  absl::StrAppend(&error, Absl(field_path), ": ", Absl(reason));
  errors_.push_back(std::move(error));
}

absl::Status ConfigErrors::ToStatus() const {
  if (errors_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors_, "; "));
}

}  // namespace referral::server
