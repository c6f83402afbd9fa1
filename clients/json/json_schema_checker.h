// Checks JSON text against a protobuf message schema before protobuf's own
// JSON parser sees it, so that every problem is reported as "line L, column
// C: field.path: what is wrong" without quoting the content (protobuf's
// messages quote it). nlohmann-json's SAX parser reads the syntax, strings
// and numbers; this unit checks each value against the schema
// (json_schema.h) as it comes, and describes syntax errors in its own
// words. It never recurses on the input and bounds nesting at `max_depth`.
#ifndef REFERRAL_CLIENTS_JSON_SCHEMA_CHECKER_H_
#define REFERRAL_CLIENTS_JSON_SCHEMA_CHECKER_H_

#include <google/protobuf/descriptor.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace referral::clients {

// OK when `text` is one JSON object that a `root` message can be read from
// as far as field names, value types, enum names and the contract's limits
// go; otherwise INVALID_ARGUMENT as described above. Positions count lines
// and characters of `text` as given (strip a byte-order mark first).
absl::Status CheckJsonAgainstSchema(absl::string_view text,
                                    const google::protobuf::Descriptor& root,
                                    int max_depth);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_JSON_SCHEMA_CHECKER_H_
