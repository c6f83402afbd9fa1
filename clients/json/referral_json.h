// Reads a referral.v1.Referral (or any message) written as protobuf JSON,
// as partner agencies and tests prepare them by hand or export them.
//
// Before handing the text to protobuf's JSON parser, the text is checked
// (json_schema_checker.h, over nlohmann-json's SAX parser): syntax, nesting
// depth, UTF-8, every field name and value type against the message schema,
// and the contract's size limits (limits.proto), so that a referral over a
// limit is refused here rather than by the broker. That gives errors that
// say where the problem is ("line 7, column 18: children[0].sex: unknown
// Sex name; did you mean SEX_FEMALE?") without quoting the content, which
// is personal data and must not end up in terminals, logs or bug reports.
// protobuf's and nlohmann's own messages quote it, so they are never passed
// on as they are.
//
// The parser takes arbitrary bytes (it is fuzzed): it never crashes, never
// recurses on the input, and bounds the size and nesting it accepts.
#ifndef REFERRAL_CLIENTS_REFERRAL_JSON_H_
#define REFERRAL_CLIENTS_REFERRAL_JSON_H_

#include <google/protobuf/message.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "referral/v1/referral.pb.h"

namespace referral::clients {

// Far above any referral the contract allows (its text limits add up to
// well under 1 MiB), small enough to hold in memory without a second
// thought.
inline constexpr size_t kMaxJsonBytes = 4 * 1024 * 1024;
// A referral nests five levels deep; anything much deeper is not one.
inline constexpr int kMaxJsonDepth = 64;

// Parses protobuf JSON into `message` (cleared first). Accepts the proto
// field names and their lowerCamelCase JSON names, enum values by name or
// number, integers as numbers or strings, null for "not set", and a leading
// UTF-8 byte-order mark. Rejects unknown fields and fields given twice.
//
// On failure, INVALID_ARGUMENT with a message of the form
// "line L, column C: field.path: what is wrong" ("...: description: must be
// at most 20000 bytes") that names fields and positions but never quotes
// values.
absl::Status ParseJsonMessage(absl::string_view json,
                              google::protobuf::Message* message);

absl::StatusOr<referral::v1::Referral> ParseReferralJson(
    absl::string_view json);

// The contents of `path`, or of standard input when `path` is "-". Fails
// with a message naming the file (not its content) when it cannot be read
// or exceeds kMaxJsonBytes.
absl::StatusOr<std::string> ReadFileOrStdin(const std::string& path);

// ReadFileOrStdin + ParseReferralJson; errors are prefixed with the path
// ("referral.json: line 3, column 5: ...", "<stdin>: ..." for "-").
absl::StatusOr<referral::v1::Referral> LoadReferralJson(
    const std::string& path);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_REFERRAL_JSON_H_
