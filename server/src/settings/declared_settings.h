// What broker_settings.proto declares about each setting, read by
// reflection: the (setting) field options of setting_options.proto. From
// them come the defaults, a value as written on the command line, the range
// checks and the documentation (--help, the settings table of
// docs/configuration.md), so that a setting is declared in one place. Works
// on any message whose fields carry (setting) options: BrokerSettings and
// BrokerCommand.
#ifndef REFERRAL_SERVER_SETTINGS_DECLARED_SETTINGS_H_
#define REFERRAL_SERVER_SETTINGS_DECLARED_SETTINGS_H_

#include <optional>
#include <string>
#include <string_view>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "server/v1/setting_options.pb.h"

namespace referral::server {

// The (setting) options of `field`; empty when it has none.
const config::v1::SettingOptions& DeclaredSetting(
    const google::protobuf::FieldDescriptor* field);

// Sets every field of `message` to its declared default. False when a
// declared default is not a value of its field (a mistake in the .proto,
// which the tests catch).
bool SetDeclaredDefaults(google::protobuf::Message* message);

// Sets `field` from `text` as written on the command line: a string as is,
// a whole number, a number ("0.25"), or true/false (also t/f, yes/no, y/n,
// 1/0, as absl's flags read them). False when `text` is not a value of the
// field's type.
bool SetSettingFromText(const google::protobuf::FieldDescriptor* field,
                        std::string_view text,
                        google::protobuf::Message* message);

// The value of `field` as written on the command line ("1800", "true",
// "0.25", a string as is); SetSettingFromText reads it back unchanged.
std::string SettingText(const google::protobuf::Message& message,
                        const google::protobuf::FieldDescriptor* field);

// What kind of value `field` takes, for messages and --help: "a whole
// number", "a number", "true or false", "text".
const char* SettingKind(const google::protobuf::FieldDescriptor* field);

// The value of `field` against its declared bounds: nullopt when in range
// (or unbounded), else e.g. "must be from 1 to 60000 (got 0)". A number
// that is not finite is never in range.
std::optional<std::string> RangeProblem(
    const google::protobuf::Message& message,
    const google::protobuf::FieldDescriptor* field);

// The declared bounds as a sentence: "Positive.", "Not negative.", "At
// least 1.", "From 1048576 (1 MiB) to 67108864 (64 MiB)."; "" when none.
std::string RangeSentence(const google::protobuf::FieldDescriptor* field);

// The declared default for people: "`1800`", "`127.0.0.1:50051`", "empty",
// "empty (off)". Markdown `code` spans.
std::string DefaultDescription(const google::protobuf::FieldDescriptor* field);

// The help line and the bounds: what the docs' table and --help say a
// setting means.
std::string SettingMeaning(const google::protobuf::FieldDescriptor* field);

// The settings table of docs/configuration.md: a markdown table, one row
// per field of `type` in declaration order, "| `name` | default | meaning |".
std::string SettingsTable(const google::protobuf::Descriptor* type);

}  // namespace referral::server

#endif  // REFERRAL_SERVER_SETTINGS_DECLARED_SETTINGS_H_
