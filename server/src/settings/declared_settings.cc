#include "settings/declared_settings.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace referral::server {
namespace {

using config::v1::SettingOptions;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr int64_t kMiB = 1 << 20;

// The shortest text that reads back as exactly `value`, as absl's flags
// print a double ("500", "0.25", "nan").
std::string DoubleText(double value) {
  for (int precision = 6; precision < 17; ++precision) {
    const std::string text = absl::StrFormat("%.*g", precision, value);
    double back = 0;
    if (absl::SimpleAtod(text, &back) && back == value) return text;
  }
  return absl::StrFormat("%.17g", value);
}

// A bound as an operator reads it, in the field's type; a byte count that
// is whole MiB says so ("1048576 (1 MiB)").
std::string BoundText(const FieldDescriptor* field, double bound) {
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
    return DoubleText(bound);
  }
  const int64_t whole = static_cast<int64_t>(bound);
  if (absl::EndsWith(field->name(), "_bytes") && whole > 0 &&
      whole % kMiB == 0) {
    return absl::StrCat(whole, " (", whole / kMiB, " MiB)");
  }
  return absl::StrCat(whole);
}

// The bounds, as the verb phrase after "must" ("be positive", "not be
// negative", "be from 1 to 60000"); "" when unbounded.
std::string Requirement(const FieldDescriptor* field) {
  const SettingOptions& declared = DeclaredSetting(field);
  if (declared.positive()) return "be positive";
  if (declared.has_min() && declared.has_max()) {
    return absl::StrCat("be from ", BoundText(field, declared.min()), " to ",
                        BoundText(field, declared.max()));
  }
  if (declared.has_min()) {
    if (declared.min() == 0) return "not be negative";
    return absl::StrCat("be at least ", BoundText(field, declared.min()));
  }
  if (declared.has_max()) {
    return absl::StrCat("be at most ", BoundText(field, declared.max()));
  }
  return "";
}

}  // namespace

const SettingOptions& DeclaredSetting(const FieldDescriptor* field) {
  return field->options().GetExtension(config::v1::setting);
}

bool SetDeclaredDefaults(Message* message) {
  const google::protobuf::Descriptor* type = message->GetDescriptor();
  bool ok = true;
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    ok &= SetSettingFromText(field, DeclaredSetting(field).default_(), message);
  }
  return ok;
}

bool SetSettingFromText(const FieldDescriptor* field, std::string_view text,
                        Message* message) {
  // Debian's Abseil has its own string_view, distinct from std's.
  const absl::string_view value_text(text.data(), text.size());
  const Reflection* reflection = message->GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      reflection->SetString(message, field, std::string(text));
      return true;
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool value = false;
      if (!absl::SimpleAtob(value_text, &value)) return false;
      reflection->SetBool(message, field, value);
      return true;
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t value = 0;
      if (!absl::SimpleAtoi(value_text, &value)) return false;
      reflection->SetInt32(message, field, value);
      return true;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double value = 0;
      if (!absl::SimpleAtod(value_text, &value)) return false;
      reflection->SetDouble(message, field, value);
      return true;
    }
    default:
      // Settings are only of the types above (a test checks).
      return false;
  }
}

std::string SettingText(const Message& message, const FieldDescriptor* field) {
  const Reflection* reflection = message.GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return reflection->GetString(message, field);
    case FieldDescriptor::CPPTYPE_BOOL:
      return reflection->GetBool(message, field) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(reflection->GetInt32(message, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return DoubleText(reflection->GetDouble(message, field));
    default:
      return "";
  }
}

const char* SettingKind(const FieldDescriptor* field) {
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_BOOL:
      return "true or false";
    case FieldDescriptor::CPPTYPE_INT32:
      return "a whole number";
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return "a number";
    default:
      return "text";
  }
}

std::optional<std::string> RangeProblem(const Message& message,
                                        const FieldDescriptor* field) {
  const SettingOptions& declared = DeclaredSetting(field);
  double value = 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      value = message.GetReflection()->GetInt32(message, field);
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      value = message.GetReflection()->GetDouble(message, field);
      break;
    default:
      return std::nullopt;
  }
  const bool in_range = std::isfinite(value) &&
                        (!declared.positive() || value > 0) &&
                        (!declared.has_min() || value >= declared.min()) &&
                        (!declared.has_max() || value <= declared.max());
  if (in_range) return std::nullopt;
  return absl::StrCat("must ", Requirement(field), " (got ",
                      SettingText(message, field), ")");
}

std::string RangeSentence(const FieldDescriptor* field) {
  std::string requirement = Requirement(field);
  if (requirement.empty()) return "";
  // "be positive" -> "Positive.", "not be negative" -> "Not negative."
  if (absl::StartsWith(requirement, "be ")) {
    requirement.erase(0, 3);
  } else {
    requirement.replace(0, std::string_view("not be ").size(), "not ");
  }
  requirement[0] = absl::ascii_toupper(requirement[0]);
  return absl::StrCat(requirement, ".");
}

std::string DefaultDescription(const FieldDescriptor* field) {
  const SettingOptions& declared = DeclaredSetting(field);
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
      declared.default_().empty()) {
    return declared.empty_means().empty()
               ? "empty"
               : absl::StrCat("empty (", declared.empty_means(), ")");
  }
  // As read back, so that the page shows the value in force ("500", not a
  // "500.0" written in the .proto).
  std::unique_ptr<Message> defaults(
      google::protobuf::MessageFactory::generated_factory()
          ->GetPrototype(field->containing_type())
          ->New());
  SetSettingFromText(field, declared.default_(), defaults.get());
  return absl::StrCat("`", SettingText(*defaults, field), "`");
}

std::string SettingMeaning(const FieldDescriptor* field) {
  const std::string range = RangeSentence(field);
  const std::string& help = DeclaredSetting(field).help();
  return range.empty() ? help : absl::StrCat(help, " ", range);
}

std::string SettingsTable(const google::protobuf::Descriptor* type) {
  std::string table = "| setting | default | meaning |\n|---|---|---|\n";
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    absl::StrAppend(&table, "| `", field->name(), "` | ",
                    DefaultDescription(field), " | ", SettingMeaning(field),
                    " |\n");
  }
  return table;
}

}  // namespace referral::server
