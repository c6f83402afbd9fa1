// Reads the contract's size limits (limits.proto) from a field's
// descriptor. Whoever enforces a limit asks here, by reflection, so the
// number stated once in the .proto is the number enforced everywhere: the
// broker's validator walking a Referral field by field, the CLI's JSON
// checker meeting each field as it reads the file.
//
//   for each field `f` of the message being checked:
//     const FieldLimits limits = LimitsOf(*f);
//     if (limits.max_items > 0 && size(f) > limits.max_items) ...
//     for each string value `v` of `f`:
//       if (const uint32_t max = ValueByteLimit(*f); max > 0 && v.size() > max)
//
// Thread-safe; reads only the descriptor's options.
#ifndef REFERRAL_PROTO_REFERRAL_V1_CONTRACT_LIMITS_H_
#define REFERRAL_PROTO_REFERRAL_V1_CONTRACT_LIMITS_H_

#include <google/protobuf/descriptor.h>

#include <cstdint>

namespace referral::v1 {

// 0 means "no limit of this kind".
struct FieldLimits {
  uint32_t max_bytes = 0;       // a singular string field's bytes
  uint32_t max_items = 0;       // a repeated field's items
  uint32_t max_item_bytes = 0;  // each item's bytes, repeated strings

  bool operator==(const FieldLimits&) const = default;
};

// The limits declared on `field` (all 0 when none are).
FieldLimits LimitsOf(const google::protobuf::FieldDescriptor& field);

// The byte limit of one string value of `field`: max_bytes for a singular
// field, max_item_bytes for each item of a repeated one; 0 when none.
uint32_t ValueByteLimit(const google::protobuf::FieldDescriptor& field);

}  // namespace referral::v1

#endif  // REFERRAL_PROTO_REFERRAL_V1_CONTRACT_LIMITS_H_
