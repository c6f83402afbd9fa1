// Names for the contract's enums on the command line and in human output:
// short, lower-case forms ("early-help", "immediate-risk") next to the
// canonical proto names ("DECISION_EARLY_HELP"), and parsing of a triage
// decision from either form or a common alias ("nfa", "s47").
#ifndef REFERRAL_CLIENTS_DECISION_NAMES_H_
#define REFERRAL_CLIENTS_DECISION_NAMES_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/generated_enum_reflection.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "referral/v1/referral.pb.h"

namespace referral::clients {

// The value's name without its enum's prefix, lower case, '-' for '_':
// DECISION_EARLY_HELP -> "early-help", QueueEvent.KIND_ARRIVED ->
// "arrived". An unknown number comes out as "<number>" so that output from
// a newer broker stays readable.
std::string EnumShortName(const google::protobuf::EnumDescriptor* type,
                          int number);

template <typename E>
std::string ShortName(E value) {
  return EnumShortName(google::protobuf::GetEnumDescriptor<E>(),
                       static_cast<int>(value));
}

// Parses a decision given as DECISION_EARLY_HELP, EARLY_HELP, early-help or
// early_help (any case), or one of the aliases nfa, advice, ea, cin, s17,
// s47, strategy, allocated, transfer. INVALID_ARGUMENT listing the short
// forms otherwise; DECISION_UNSPECIFIED is never accepted.
absl::StatusOr<referral::v1::Decision> ParseDecision(absl::string_view text);

// The short forms of every real decision, in enum order.
std::vector<std::string> DecisionShortNames();

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_DECISION_NAMES_H_
