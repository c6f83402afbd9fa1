#include "referral/v1/contract_limits.h"

#include "referral/v1/limits.pb.h"

namespace referral::v1 {

FieldLimits LimitsOf(const google::protobuf::FieldDescriptor& field) {
  const google::protobuf::FieldOptions& options = field.options();
  FieldLimits limits;
  limits.max_bytes = options.GetExtension(max_bytes);
  limits.max_items = options.GetExtension(max_items);
  limits.max_item_bytes = options.GetExtension(max_item_bytes);
  return limits;
}

uint32_t ValueByteLimit(const google::protobuf::FieldDescriptor& field) {
  return field.is_repeated() ? field.options().GetExtension(max_item_bytes)
                             : field.options().GetExtension(max_bytes);
}

}  // namespace referral::v1
