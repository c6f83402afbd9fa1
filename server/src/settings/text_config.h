// Loading the broker's hand-edited text-format configuration files
// (server/config/*.txtpb): reading the file, parsing it with every syntax
// error located in the source, and collecting semantic errors placed at the
// text of the offending field. The config units (routing_table, principals,
// working_calendar) share this so that a council officer editing any of the
// files sees mistakes reported the same way, "file:line:column: ...", and
// can fix them all in one edit.
#ifndef REFERRAL_SERVER_TEXT_CONFIG_H_
#define REFERRAL_SERVER_TEXT_CONFIG_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"

namespace referral::server {

using ConfigLocation = google::protobuf::TextFormat::ParseLocation;
using ConfigParseTree = google::protobuf::TextFormat::ParseInfoTree;

// The whole contents of the file at `path`. NOT_FOUND "<path>: cannot open
// file" or "<path>: cannot read file" (a directory, an I/O error), so a
// broker pointed at the wrong path refuses to start.
absl::StatusOr<std::string> ReadConfigFile(std::string_view path);

// Parses `text` in protobuf text format into `out` (cleared first). When
// `tree` is not null it receives where each field was written, for
// ConfigLocator. Syntax errors are INVALID_ARGUMENT, each
// "<source>:<line>:<column>: <reason>" (1-based, as editors count), joined
// with "; ".
absl::Status ParseTextConfig(std::string_view text, std::string_view source,
                             google::protobuf::Message* out,
                             ConfigParseTree* tree = nullptr);

// Where one message's fields were written in a parsed file. Lookups of a
// field that was not written (a required field left out, a config built in
// code with no tree) fall back to where the message itself was written, so
// an error about a missing field points at the message that lacks it.
// Cheap to copy; borrows the tree, which must outlive it.
class ConfigLocator {
 public:
  // The top-level message of a file parsed into `tree` (may be null: every
  // lookup then answers `self`).
  ConfigLocator(const ConfigParseTree* tree,
                const google::protobuf::Descriptor* type,
                ConfigLocation self = ConfigLocation())
      : tree_(tree), type_(type), self_(self) {}

  // Where the message itself was written; line -1 for the top level.
  ConfigLocation self() const { return self_; }

  // Where field `name` was written: value `index` of a repeated field, or -1
  // for a singular one. self() when it was not written.
  ConfigLocation Field(const char* name, int index = -1) const;

  // The locator of message field `name` (value `index`, -1 when singular),
  // whose self() is Field(name, index).
  ConfigLocator Nested(const char* name, int index = -1) const;

 private:
  const ConfigParseTree* tree_;
  const google::protobuf::Descriptor* type_;
  ConfigLocation self_;
};

// Semantic errors in a config file, each placed at the text that caused it:
//   "<source>:<line>:<column>: <field path>: <reason>"
// or "<source>: <field path>: <reason>" when there is no line to point at
// (e.g. a required field left out of the top-level message), or just
// "<field path>: <reason>" when the source is empty (a config built in code).
class ConfigErrors {
 public:
  explicit ConfigErrors(std::string_view source) : source_(source) {}

  void Add(ConfigLocation where, std::string_view field_path,
           std::string_view reason);

  bool empty() const { return errors_.empty(); }
  // OK when there are none; otherwise INVALID_ARGUMENT listing all of them,
  // joined with "; ".
  absl::Status ToStatus() const;

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

}  // namespace referral::server

#endif  // REFERRAL_SERVER_TEXT_CONFIG_H_
