#include "settings/broker_command_line.h"

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "settings/declared_settings.h"

namespace referral::server {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

struct Flag {
  const FieldDescriptor* field = nullptr;
  Message* message = nullptr;
};

// The flag named `name` in the command's or the settings' fields.
Flag FindFlag(std::string_view name, BrokerCommandLine& line) {
  Message* const messages[] = {&line.command, &line.settings};
  for (Message* message : messages) {
    if (const FieldDescriptor* field =
            message->GetDescriptor()->FindFieldByName(std::string(name))) {
      return {field, message};
    }
  }
  return {};
}

bool IsBool(const Flag& flag) {
  return flag.field != nullptr &&
         flag.field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL;
}

// `text` broken into lines of at most `width` columns, each indented.
std::string Wrapped(absl::string_view text, absl::string_view indent,
                    size_t width) {
  std::string out;
  std::string line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line.empty() &&
        indent.size() + line.size() + 1 + word.size() > width) {
      absl::StrAppend(&out, indent, line, "\n");
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", word);
  }
  if (!line.empty()) absl::StrAppend(&out, indent, line, "\n");
  return out;
}

// One flag of --help: its spelling, kind and default, and below, its
// meaning.
std::string FlagUsage(const FieldDescriptor* field) {
  const bool is_text = field->cpp_type() == FieldDescriptor::CPPTYPE_STRING;
  const bool is_bool = field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL;
  const std::string text =
      absl::StrCat("--", field->name(), is_bool ? "" : "=VALUE", "  (",
                   is_text ? "" : absl::StrCat(SettingKind(field), "; "),
                   "default: ", DefaultDescription(field), ")\n",
                   Wrapped(SettingMeaning(field), "      ", 78));
  // Markdown code spans read as plain text in a terminal.
  return absl::StrCat("  ", absl::StrReplaceAll(text, {{"`", ""}}));
}

std::string FlagsUsage(const Descriptor* type) {
  std::string usage;
  for (int i = 0; i < type->field_count(); ++i) {
    absl::StrAppend(&usage, FlagUsage(type->field(i)));
  }
  return usage;
}

}  // namespace

absl::StatusOr<BrokerCommandLine> ParseBrokerCommandLine(
    const std::vector<std::string>& args) {
  BrokerCommandLine line;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      if (i + 1 == args.size()) break;
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", absl::CHexEscape(args[i + 1]),
                       "\": referral_broker takes only flags"));
    }
    if (arg.size() < 2 || arg[0] != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", absl::CHexEscape(arg),
                       "\": referral_broker takes only flags"));
    }
    // Debian's Abseil has its own string_view; StrReplaceAll takes it.
    absl::string_view body = arg;
    body.remove_prefix(absl::StartsWith(body, "--") ? 2 : 1);
    const size_t equals = body.find('=');
    const bool has_value = equals != absl::string_view::npos;
    const std::string name =
        absl::StrReplaceAll(body.substr(0, equals), {{"-", "_"}});
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed flag \"", absl::CHexEscape(arg), "\""));
    }
    Flag flag = FindFlag(name, line);
    std::string value;
    if (flag.field == nullptr && !has_value && name.starts_with("no") &&
        IsBool(FindFlag(name.substr(2), line))) {
      flag = FindFlag(name.substr(2), line);
      value = "false";
    } else if (flag.field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", absl::CHexEscape(name)));
    } else if (has_value) {
      value = std::string(body.substr(equals + 1));
    } else if (IsBool(flag)) {
      value = "true";
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, " needs a value (--", name, "=VALUE)"));
    }
    if (!SetSettingFromText(flag.field, value, flag.message)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag.field->name(), ": \"", absl::CHexEscape(value),
          "\" is not ", SettingKind(flag.field)));
    }
  }
  return line;
}

std::string BrokerUsage() {
  return absl::StrCat(
      "Serves the multi-agency referral broker.\n\n"
      "  referral_broker --config_file=/etc/referral-broker/broker.txtpb\n"
      "  referral_broker --config_file=... --check-config\n"
      "  referral_broker --listen=127.0.0.1:50051 --data_dir=data ...\n\n"
      "A flag is --name=VALUE or --name VALUE; a true-or-false flag is "
      "--name,\n"
      "--noname or --name=false. Names may be spelt with - for _.\n\n"
      "Flags:\n",
      FlagsUsage(config::v1::BrokerCommand::descriptor()),
      "\nSettings, each a flag and a field of the settings file "
      "(docs/configuration.md).\nA flag given on the command line overrides "
      "the file, which overrides the default:\n",
      FlagsUsage(config::v1::BrokerSettings::descriptor()));
}

}  // namespace referral::server
