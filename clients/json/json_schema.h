// What a protobuf message schema allows at each place of a JSON document,
// for the JSON checker (json_schema_checker.h): the slot a value fills
// (a field, or one element of a repeated field), whether a scalar fits it,
// the contract's limits (limits.proto), and hints for names that do not
// match ("did you mean SEX_FEMALE?"). Problems are described in words that
// name fields and types and never quote a value.
#ifndef REFERRAL_CLIENTS_JSON_SCHEMA_H_
#define REFERRAL_CLIENTS_JSON_SCHEMA_H_

#include <google/protobuf/descriptor.h>

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace referral::clients {

// Where a JSON value goes, according to the schema.
struct Slot {
  enum class Kind {
    kUnchecked,  // no schema here (inside a well-known type or a map)
    kField,      // the value of a singular or repeated field
    kElement,    // one element of a repeated field
  };
  Kind kind = Kind::kUnchecked;
  const google::protobuf::FieldDescriptor* field = nullptr;
  std::string path;  // "children[0].sex"

  // The value is a whole repeated field: a JSON array.
  bool WantsArray() const;
  // Any scalar is fine: no schema, or a well-known type (a Timestamp is a
  // string), left to protobuf.
  bool Unchecked() const;
};

enum class JsonKind { kObject, kArray, kString, kNumber, kBool };

// "expected a string, found a number".
std::string Mismatch(const Slot& slot, JsonKind found);

// What is wrong with a scalar in `slot`, or "" when it fits: a string
// (`value` decoded), a number (`number` as written) or true/false. Strings
// are held to the contract's byte limits.
std::string StringProblem(const Slot& slot, absl::string_view value);
std::string NumberProblem(const Slot& slot, absl::string_view number);
std::string BoolProblem(const Slot& slot);

// The field of `message` a JSON key names (its proto name or JSON name).
const google::protobuf::FieldDescriptor* FindField(
    const google::protobuf::Descriptor& message, absl::string_view key);
// "unknown field \"descripton\" (a referral.v1.Referral has no field of
// that name; did you mean \"description\"?)"; the key shortened and
// escaped.
std::string UnknownField(const google::protobuf::Descriptor& message,
                         absl::string_view key);
// Whether an object of a message type opens a message to check field by
// field (well-known types are left to protobuf).
bool IsCheckedMessage(const google::protobuf::FieldDescriptor& field);

// Length of the JSON number at the start of `s` (RFC 8259 grammar, the
// longest match, as nlohmann's lexer reads it), or 0.
size_t JsonNumberLength(absl::string_view s);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_JSON_SCHEMA_H_
