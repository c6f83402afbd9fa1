#include "decision_names.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace referral::clients {
namespace {

// "PriorityBand" -> "PRIORITY_BAND_": the prefix protobuf style puts on
// every value of the enum.
std::string ValuePrefix(absl::string_view type_name) {
  std::string prefix;
  for (size_t i = 0; i < type_name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(type_name[i]);
    if (i > 0 && absl::ascii_isupper(c)) prefix.push_back('_');
    prefix.push_back(absl::ascii_toupper(c));
  }
  prefix.push_back('_');
  return prefix;
}

// Upper case with '_' for '-' and ' ': the shape of a proto value name.
std::string CanonicalShape(absl::string_view text) {
  std::string out;
  for (char c : absl::StripAsciiWhitespace(text)) {
    out.push_back(c == '-' || c == ' '
                      ? '_'
                      : absl::ascii_toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

std::string EnumShortName(const google::protobuf::EnumDescriptor* type,
                          int number) {
  const google::protobuf::EnumValueDescriptor* value =
      type->FindValueByNumber(number);
  if (value == nullptr) return absl::StrCat(number);
  absl::string_view name = value->name();
  absl::ConsumePrefix(&name, ValuePrefix(type->name()));
  std::string out = absl::AsciiStrToLower(name);
  for (char& c : out) {
    if (c == '_') c = '-';
  }
  return out;
}

std::vector<std::string> DecisionShortNames() {
  std::vector<std::string> names;
  const auto* type = referral::v1::Decision_descriptor();
  for (int i = 0; i < type->value_count(); ++i) {
    if (type->value(i)->number() == referral::v1::DECISION_UNSPECIFIED) {
      continue;
    }
    names.push_back(EnumShortName(type, type->value(i)->number()));
  }
  return names;
}

absl::StatusOr<referral::v1::Decision> ParseDecision(absl::string_view text) {
  using referral::v1::Decision;
  const std::string canonical = CanonicalShape(text);
  absl::string_view shape = canonical;
  absl::ConsumePrefix(&shape, "DECISION_");
  static const auto* const kAliases =
      new std::vector<std::pair<absl::string_view, Decision>>{
          {"NFA", referral::v1::DECISION_NO_FURTHER_ACTION},
          {"NONE", referral::v1::DECISION_NO_FURTHER_ACTION},
          {"ADVICE", referral::v1::DECISION_INFORMATION_AND_ADVICE},
          {"INFORMATION", referral::v1::DECISION_INFORMATION_AND_ADVICE},
          {"SIGNPOSTING", referral::v1::DECISION_INFORMATION_AND_ADVICE},
          {"EH", referral::v1::DECISION_EARLY_HELP},
          {"CIN", referral::v1::DECISION_CHILD_IN_NEED_ASSESSMENT},
          {"S17", referral::v1::DECISION_CHILD_IN_NEED_ASSESSMENT},
          {"ASSESSMENT", referral::v1::DECISION_CHILD_IN_NEED_ASSESSMENT},
          {"S47", referral::v1::DECISION_STRATEGY_DISCUSSION},
          {"STRATEGY", referral::v1::DECISION_STRATEGY_DISCUSSION},
          {"ALLOCATED", referral::v1::DECISION_PASS_TO_ALLOCATED_WORKER},
          {"ALLOCATED_WORKER", referral::v1::DECISION_PASS_TO_ALLOCATED_WORKER},
          {"TRANSFER", referral::v1::DECISION_TRANSFER_TO_ANOTHER_AUTHORITY},
      };
  const auto* type = referral::v1::Decision_descriptor();
  if (!shape.empty() && shape != "UNSPECIFIED") {
    const auto* value = type->FindValueByName(absl::StrCat("DECISION_", shape));
    if (value != nullptr) return static_cast<Decision>(value->number());
    for (const auto& [alias, decision] : *kAliases) {
      if (shape == alias) return decision;
    }
  }
  // The text is a command-line argument, not referral content: safe to echo,
  // but bounded so a pasted paragraph does not flood the terminal.
  const absl::string_view shown = text.substr(0, 60);
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown decision \"", absl::CHexEscape(shown),
      text.size() > shown.size() ? "..." : "", "\"; use one of: ",
      absl::StrJoin(DecisionShortNames(), ", "), " (or the DECISION_* names)"));
}

}  // namespace referral::clients
