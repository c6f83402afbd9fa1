#include "routing_table.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace referral::server {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::TextFormat;
using ParseInfoTree = TextFormat::ParseInfoTree;
using ParseLocation = TextFormat::ParseLocation;

// Bounds on due policies: a year of days or hours is already absurd for a
// front-door clock, and the bound keeps due-time arithmetic short.
constexpr int kMaxWorkingDays = 366;
constexpr int kMaxHours = 366 * 24;

bool IsLetter(char c) { return c >= 'A' && c <= 'Z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Queue and rule names are stored with referrals and shown in audit trails,
// so they are restricted to a safe identifier alphabet.
bool IsValidName(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || IsDigit(c) || c == '-';
         });
}

// An upper-case outward code in one of the UK formats AN, ANN, AAN, AANN,
// ANA, AANA, with the letter restrictions that hold by position.
bool IsValidDistrict(std::string_view s) {
  std::string shape;
  for (char c : s) {
    if (IsLetter(c)) {
      shape.push_back('A');
    } else if (IsDigit(c)) {
      shape.push_back('N');
    } else {
      return false;
    }
  }
  if (shape != "AN" && shape != "ANN" && shape != "AAN" && shape != "AANN" &&
      shape != "ANA" && shape != "AANA") {
    return false;
  }
  if (absl::StrContains("QVX", s[0])) return false;
  if (shape[1] == 'A' && absl::StrContains("IJZ", s[1])) return false;
  if (shape == "ANA" && !absl::StrContains("ABCDEFGHJKSTUW", s[2])) {
    return false;
  }
  if (shape == "AANA" && !absl::StrContains("ABEHMNPRVWXY", s[3])) {
    return false;
  }
  return true;
}

// The district (outward code) of a postcode: everything before the
// three-character inward code. Works on "PE1 1XX" and, defensively, on
// "pe11xx"; empty when the postcode is not recognisable, which routing
// treats like a missing postcode rather than as out of area.
//
// Deliberately local: routing must not depend on intake's identifier code
// to decide which councils' children stay with this front door.
std::string PostcodeDistrict(std::string_view postcode) {
  std::string compact;
  for (char c : postcode) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) {
      compact.push_back(absl::ascii_toupper(static_cast<unsigned char>(c)));
    }
  }
  if (compact.size() < 5 || compact.size() > 7) return "";
  const std::string_view inward =
      std::string_view(compact).substr(compact.size() - 3);
  if (!IsDigit(inward[0]) || !IsLetter(inward[1]) || !IsLetter(inward[2])) {
    return "";
  }
  std::string outward = compact.substr(0, compact.size() - 3);
  return IsValidDistrict(outward) ? outward : "";
}

// Collects text-format syntax errors as "<source>:<line>:<column>: reason"
// (1-based, as editors count).
class SourceErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  explicit SourceErrorCollector(std::vector<std::string>* errors,
                                std::string_view source)
      : errors_(errors), source_(source) {}

  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    errors_->push_back(
        absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message));
  }

 private:
  std::vector<std::string>* errors_;
  std::string source_;
};

// Semantic errors, each placed at the text of the offending field.
class ConfigErrors {
 public:
  explicit ConfigErrors(std::string_view source) : source_(source) {}

  // absl::string_view: Debian's Abseil does not alias std::string_view, and
  // absl::StrCat only takes its own.
  void Add(ParseLocation where, absl::string_view field_path,
           absl::string_view reason) {
    if (where.line >= 0) {
      errors_.push_back(absl::StrCat(source_, ":", where.line + 1, ":",
                                     where.column + 1, ": ", field_path, ": ",
                                     reason));
    } else {
      errors_.push_back(absl::StrCat(source_, ": ", field_path, ": ", reason));
    }
  }
  bool empty() const { return errors_.empty(); }
  absl::Status ToStatus() const {
    return absl::InvalidArgumentError(absl::StrJoin(errors_, "; "));
  }

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

// Where field `name` (value `index`, -1 for a singular field) of the message
// whose parse info is `tree` was written; `fallback` (usually the enclosing
// message) when it was not written, e.g. a required field left out.
ParseLocation Where(const ParseInfoTree* tree, const Descriptor* type,
                    const char* name, int index, ParseLocation fallback) {
  if (tree == nullptr) return fallback;
  const FieldDescriptor* field = type->FindFieldByName(name);
  ParseLocation at = tree->GetLocation(field, index);
  // A list literal (`f: ["a", "b"]`) records one location for the field,
  // not one per value.
  if (at.line < 0 && index > 0) at = tree->GetLocation(field, 0);
  return at.line >= 0 ? at : fallback;
}

const ParseInfoTree* Nested(const ParseInfoTree* tree, const Descriptor* type,
                            const char* name, int index) {
  if (tree == nullptr) return nullptr;
  return tree->GetTreeForNested(type->FindFieldByName(name), index);
}

void ValidateDue(const config::v1::DuePolicy& due, const ParseInfoTree* tree,
                 ParseLocation where, const std::string& path,
                 ConfigErrors& errors) {
  const Descriptor* type = config::v1::DuePolicy::descriptor();
  switch (due.clock_case()) {
    case config::v1::DuePolicy::CLOCK_NOT_SET:
      errors.Add(where, path,
                 "required: set one of working_days, working_hours or "
                 "wall_clock_hours");
      return;
    case config::v1::DuePolicy::kWorkingDays:
      if (due.working_days() < 1 || due.working_days() > kMaxWorkingDays) {
        errors.Add(Where(tree, type, "working_days", -1, where),
                   path + ".working_days",
                   absl::StrCat("must be from 1 to ", kMaxWorkingDays));
      }
      return;
    case config::v1::DuePolicy::kWorkingHours:
      if (due.working_hours() < 1 || due.working_hours() > kMaxHours) {
        errors.Add(Where(tree, type, "working_hours", -1, where),
                   path + ".working_hours",
                   absl::StrCat("must be from 1 to ", kMaxHours));
      }
      return;
    case config::v1::DuePolicy::kWallClockHours:
      if (due.wall_clock_hours() < 1 || due.wall_clock_hours() > kMaxHours) {
        errors.Add(Where(tree, type, "wall_clock_hours", -1, where),
                   path + ".wall_clock_hours",
                   absl::StrCat("must be from 1 to ", kMaxHours));
      }
      return;
  }
}

absl::Time Earlier(absl::Time a, absl::Time b) { return a < b ? a : b; }

}  // namespace

RoutingTable::RoutingTable(config::v1::RoutingConfig config)
    : config_(std::move(config)) {}

absl::StatusOr<std::unique_ptr<RoutingTable>> RoutingTable::Parse(
    std::string_view text, std::string_view source_name) {
  config::v1::RoutingConfig config;
  ParseInfoTree tree;
  {
    std::vector<std::string> syntax_errors;
    SourceErrorCollector collector(&syntax_errors, source_name);
    TextFormat::Parser parser;
    parser.RecordErrorsTo(&collector);
    parser.WriteLocationsTo(&tree);
    if (!parser.ParseFromString(std::string(text), &config)) {
      return absl::InvalidArgumentError(absl::StrJoin(syntax_errors, "; "));
    }
  }

  // Built in place (the constructor is private) and validated field by
  // field, collecting every problem so one edit can fix them all.
  std::unique_ptr<RoutingTable> table(new RoutingTable(config));
  ConfigErrors errors(source_name);
  const ParseLocation nowhere;
  const Descriptor* routing_type = config::v1::RoutingConfig::descriptor();

  for (int i = 0; i < config.in_area_districts_size(); ++i) {
    const std::string path = absl::StrCat("in_area_districts[", i, "]");
    const ParseLocation at =
        Where(&tree, routing_type, "in_area_districts", i, nowhere);
    const std::string district = absl::AsciiStrToUpper(
        absl::StripAsciiWhitespace(config.in_area_districts(i)));
    if (!IsValidDistrict(district)) {
      errors.Add(at, path,
                 "not a postcode district (an outward code such as PE1)");
    } else if (!table->in_area_districts_.insert(district).second) {
      errors.Add(at, path, absl::StrCat(district, " is listed more than once"));
    }
  }

  const Descriptor* queue_type = config::v1::QueueConfig::descriptor();
  for (int i = 0; i < config.queues_size(); ++i) {
    const config::v1::QueueConfig& queue = config.queues(i);
    const std::string path = absl::StrCat("queues[", i, "]");
    const ParseLocation at = Where(&tree, routing_type, "queues", i, nowhere);
    const ParseInfoTree* queue_tree = Nested(&tree, routing_type, "queues", i);
    const ParseLocation name_at = Where(queue_tree, queue_type, "name", -1, at);
    if (!IsValidName(queue.name())) {
      errors.Add(name_at, path + ".name",
                 "must be 1 to 64 characters from [a-z0-9-]");
    } else if (table->queues_.contains(queue.name())) {
      errors.Add(name_at, path + ".name",
                 absl::StrCat("duplicate queue name \"", queue.name(), "\""));
    } else {
      table->queues_.emplace(queue.name(), queue.due());
      table->queue_names_.push_back(queue.name());
    }
    ValidateDue(queue.due(), Nested(queue_tree, queue_type, "due", -1),
                Where(queue_tree, queue_type, "due", -1, at), path + ".due",
                errors);
  }
  if (config.queues().empty()) {
    errors.Add(nowhere, "queues", "required: at least one queue");
  }

  // A reference to a queue that does not exist would strand referrals, so
  // every name a rule or the default uses must be a configured queue.
  auto check_queue_ref = [&](const std::string& name, ParseLocation where,
                             const std::string& path) {
    if (!table->queues_.contains(name)) {
      errors.Add(where, path, absl::StrCat("unknown queue \"", name, "\""));
    }
  };

  const Descriptor* rule_type = config::v1::RoutingRule::descriptor();
  const Descriptor* match_type = config::v1::RuleMatch::descriptor();
  absl::flat_hash_set<std::string> rule_names;
  for (int i = 0; i < config.rules_size(); ++i) {
    const config::v1::RoutingRule& rule = config.rules(i);
    const std::string path = absl::StrCat("rules[", i, "]");
    const ParseLocation at = Where(&tree, routing_type, "rules", i, nowhere);
    const ParseInfoTree* rule_tree = Nested(&tree, routing_type, "rules", i);
    const ParseLocation name_at = Where(rule_tree, rule_type, "name", -1, at);
    if (!IsValidName(rule.name()) || rule.name() == kDefaultRule) {
      errors.Add(name_at, path + ".name",
                 "must be 1 to 64 characters from [a-z0-9-], not \"default\"");
    } else if (!rule_names.insert(rule.name()).second) {
      errors.Add(name_at, path + ".name",
                 absl::StrCat("duplicate rule name \"", rule.name(), "\""));
    }

    Rule compiled;
    compiled.name = rule.name();
    const config::v1::RuleMatch& match = rule.match();
    const ParseLocation match_at = Where(rule_tree, rule_type, "match", -1, at);
    const ParseInfoTree* match_tree = Nested(rule_tree, rule_type, "match", -1);
    for (int j = 0; j < match.agency_types_size(); ++j) {
      const int value = match.agency_types(j);
      // UNSPECIFIED never reaches routing (intake rejects it), so a rule
      // naming it would silently never match.
      if (!::referral::v1::AgencyType_IsValid(value) ||
          value == ::referral::v1::AGENCY_TYPE_UNSPECIFIED) {
        errors.Add(Where(match_tree, match_type, "agency_types", j, match_at),
                   absl::StrCat(path, ".match.agency_types[", j, "]"),
                   "must be a specified agency type");
      }
      compiled.agency_types.push_back(match.agency_types(j));
    }
    for (int j = 0; j < match.concerns_size(); ++j) {
      const int value = match.concerns(j);
      if (!::referral::v1::ConcernCategory_IsValid(value) ||
          value == ::referral::v1::CONCERN_CATEGORY_UNSPECIFIED) {
        errors.Add(Where(match_tree, match_type, "concerns", j, match_at),
                   absl::StrCat(path, ".match.concerns[", j, "]"),
                   "must be a specified concern category");
      }
      compiled.concerns.push_back(match.concerns(j));
    }
    if (match.has_immediate_risk()) {
      compiled.immediate_risk = match.immediate_risk();
    }
    if (match.has_postcode_in_area()) {
      compiled.postcode_in_area = match.postcode_in_area();
      // With no districts every postcode is out of area: almost certainly
      // a config mistake that would send every referral away.
      if (config.in_area_districts().empty()) {
        errors.Add(
            Where(match_tree, match_type, "postcode_in_area", -1, match_at),
            path + ".match.postcode_in_area",
            "needs in_area_districts to be configured");
      }
    }
    if (match.has_inside_working_hours()) {
      compiled.inside_working_hours = match.inside_working_hours();
    }

    if (rule.queue().empty() && rule.notify().empty()) {
      errors.Add(at, path, "has no action: set queue or notify");
    }
    if (!rule.queue().empty()) {
      check_queue_ref(rule.queue(),
                      Where(rule_tree, rule_type, "queue", -1, at),
                      path + ".queue");
      compiled.queue = rule.queue();
    }
    for (int j = 0; j < rule.notify_size(); ++j) {
      check_queue_ref(rule.notify(j),
                      Where(rule_tree, rule_type, "notify", j, at),
                      absl::StrCat(path, ".notify[", j, "]"));
      compiled.notify.push_back(rule.notify(j));
    }
    table->rules_.push_back(std::move(compiled));
  }

  if (config.default_queue().empty()) {
    errors.Add(nowhere, "default_queue",
               "required: referrals that no rule places go there");
  } else {
    check_queue_ref(config.default_queue(),
                    Where(&tree, routing_type, "default_queue", -1, nowhere),
                    "default_queue");
  }

  if (!config.has_immediate_risk_due()) {
    errors.Add(nowhere, "immediate_risk_due",
               "required: the clock for a child who needs protection now");
  } else {
    ValidateDue(config.immediate_risk_due(),
                Nested(&tree, routing_type, "immediate_risk_due", -1),
                Where(&tree, routing_type, "immediate_risk_due", -1, nowhere),
                "immediate_risk_due", errors);
  }

  if (!errors.empty()) return errors.ToStatus();
  return table;
}

absl::StatusOr<std::unique_ptr<RoutingTable>> RoutingTable::LoadFile(
    std::string_view path) {
  std::ifstream in{std::string(path)};
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(std::string(path), ": cannot open file"));
  }
  std::stringstream contents;
  contents << in.rdbuf();
  return Parse(contents.str(), path);
}

bool RoutingTable::IsInArea(std::string_view postcode) const {
  const std::string district = PostcodeDistrict(postcode);
  return !district.empty() && in_area_districts_.contains(district);
}

bool RoutingTable::IsOutOfArea(
    const std::vector<std::string>& child_postcodes) const {
  bool any_known = false;
  for (const std::string& postcode : child_postcodes) {
    if (PostcodeDistrict(postcode).empty()) continue;
    // One child in area keeps the whole referral: siblings are triaged
    // together by the authority where any of them lives.
    if (IsInArea(postcode)) return false;
    any_known = true;
  }
  return any_known;
}

bool RoutingTable::Matches(const Rule& rule, const RoutingInput& in,
                           bool out_of_area) const {
  if (!rule.agency_types.empty() &&
      std::find(rule.agency_types.begin(), rule.agency_types.end(),
                in.agency_type) == rule.agency_types.end()) {
    return false;
  }
  if (!rule.concerns.empty() &&
      std::none_of(in.concerns.begin(), in.concerns.end(), [&](auto concern) {
        return std::find(rule.concerns.begin(), rule.concerns.end(), concern) !=
               rule.concerns.end();
      })) {
    return false;
  }
  if (rule.immediate_risk.has_value() &&
      *rule.immediate_risk != in.immediate_risk) {
    return false;
  }
  if (rule.postcode_in_area.has_value() &&
      *rule.postcode_in_area == out_of_area) {
    return false;
  }
  if (rule.inside_working_hours.has_value() &&
      *rule.inside_working_hours != in.inside_working_hours) {
    return false;
  }
  return true;
}

RouteDecision RoutingTable::Route(const RoutingInput& in) const {
  const bool out_of_area = IsOutOfArea(in.child_postcodes);
  RouteDecision decision;
  std::vector<std::string> notify;
  for (const Rule& rule : rules_) {
    if (!Matches(rule, in, out_of_area)) continue;
    if (decision.queue.empty() && !rule.queue.empty()) {
      decision.queue = rule.queue;
      decision.rule = rule.name;
    }
    notify.insert(notify.end(), rule.notify.begin(), rule.notify.end());
  }
  if (decision.queue.empty()) {
    decision.queue = config_.default_queue();
    decision.rule = std::string(kDefaultRule);
  }
  for (std::string& queue : notify) {
    if (queue == decision.queue ||
        std::find(decision.notified_queues.begin(),
                  decision.notified_queues.end(),
                  queue) != decision.notified_queues.end()) {
      continue;
    }
    decision.notified_queues.push_back(std::move(queue));
  }
  return decision;
}

absl::Time RoutingTable::ApplyDuePolicy(const config::v1::DuePolicy& policy,
                                        absl::Time received,
                                        const WorkingCalendar& calendar) {
  switch (policy.clock_case()) {
    case config::v1::DuePolicy::kWorkingDays:
      return calendar.AddWorkingDays(received, policy.working_days());
    case config::v1::DuePolicy::kWorkingHours:
      return calendar.AddWorkingTime(received,
                                     absl::Hours(policy.working_hours()));
    case config::v1::DuePolicy::kWallClockHours:
      return received + absl::Hours(policy.wall_clock_hours());
    case config::v1::DuePolicy::CLOCK_NOT_SET:
      break;
  }
  // Unreachable after validation; due at once is the safe answer.
  return received;
}

absl::StatusOr<absl::Time> RoutingTable::DueAt(
    const std::string& queue, bool immediate_risk, absl::Time received,
    const WorkingCalendar& calendar) const {
  const auto it = queues_.find(queue);
  if (it == queues_.end()) {
    return absl::NotFoundError(absl::StrCat("unknown queue \"", queue, "\""));
  }
  absl::Time due = ApplyDuePolicy(it->second, received, calendar);
  if (immediate_risk) {
    due = Earlier(
        due, ApplyDuePolicy(config_.immediate_risk_due(), received, calendar));
  }
  return due;
}

}  // namespace referral::server
