#include "rules/routing_table.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/repeated_field.h"
#include "rules/identifiers.h"
#include "rules/names.h"
#include "settings/text_config.h"

namespace referral::server {
namespace {

// Bounds on due policies: a year of days or hours is already absurd for a
// front-door clock, and the bound keeps due-time arithmetic short.
constexpr int kMaxWorkingDays = 366;
constexpr int kMaxHours = 366 * 24;

// The district of a child's postcode, or "" when routing cannot place it:
// an unrecognisable postcode, or GIR 0AA, which is valid but names no area.
// Routing treats "" like a missing postcode rather than as out of area, so
// a typo never sends a child's referral to another authority.
std::string PlaceableDistrict(std::string_view postcode) {
  std::string district = PostcodeDistrict(postcode);
  return IsValidOutwardCode(district) ? district : "";
}

// `due` was written at `at` (a field of the enclosing message); `path`
// names it in errors.
void ValidateDue(const config::v1::DuePolicy& due, const ConfigLocator& at,
                 const std::string& path, ConfigErrors& errors) {
  switch (due.clock_case()) {
    case config::v1::DuePolicy::CLOCK_NOT_SET:
      errors.Add(at.self(), path,
                 "required: set one of working_days, working_hours or "
                 "wall_clock_hours");
      return;
    case config::v1::DuePolicy::kWorkingDays:
      if (due.working_days() < 1 || due.working_days() > kMaxWorkingDays) {
        errors.Add(at.Field("working_days"), path + ".working_days",
                   absl::StrCat("must be from 1 to ", kMaxWorkingDays));
      }
      return;
    case config::v1::DuePolicy::kWorkingHours:
      if (due.working_hours() < 1 || due.working_hours() > kMaxHours) {
        errors.Add(at.Field("working_hours"), path + ".working_hours",
                   absl::StrCat("must be from 1 to ", kMaxHours));
      }
      return;
    case config::v1::DuePolicy::kWallClockHours:
      if (due.wall_clock_hours() < 1 || due.wall_clock_hours() > kMaxHours) {
        errors.Add(at.Field("wall_clock_hours"), path + ".wall_clock_hours",
                   absl::StrCat("must be from 1 to ", kMaxHours));
      }
      return;
  }
}

// The values of a rule's repeated enum condition (`field` of its match,
// written at `match_at`), each of which must be known and specified:
// UNSPECIFIED (0 in every proto3 enum) never reaches routing because intake
// rejects it, so a rule naming it would silently never match.
template <typename Enum>
std::vector<Enum> MatchValues(
    const google::protobuf::RepeatedField<int>& values, bool (*is_valid)(int),
    const ConfigLocator& match_at, const char* field, const std::string& path,
    std::string_view reason, ConfigErrors& errors) {
  std::vector<Enum> out;
  for (int j = 0; j < values.size(); ++j) {
    if (!is_valid(values[j]) || values[j] == 0) {
      errors.Add(match_at.Field(field, j),
                 absl::StrCat(path, ".match.", field, "[", j, "]"), reason);
    }
    out.push_back(static_cast<Enum>(values[j]));
  }
  return out;
}

absl::Time Earlier(absl::Time a, absl::Time b) { return a < b ? a : b; }

}  // namespace

RoutingTable::RoutingTable(config::v1::RoutingConfig config)
    : config_(std::move(config)) {}

absl::StatusOr<std::unique_ptr<RoutingTable>> RoutingTable::Parse(
    std::string_view text, std::string_view source_name) {
  config::v1::RoutingConfig config;
  ConfigParseTree tree;
  if (absl::Status parsed = ParseTextConfig(text, source_name, &config, &tree);
      !parsed.ok()) {
    return parsed;
  }

  // Built in place (the constructor is private) and validated field by
  // field, collecting every problem so one edit can fix them all.
  std::unique_ptr<RoutingTable> table(new RoutingTable(config));
  ConfigErrors errors(source_name);
  const ConfigLocator file(&tree, config::v1::RoutingConfig::descriptor());

  for (int i = 0; i < config.in_area_districts_size(); ++i) {
    const std::string path = absl::StrCat("in_area_districts[", i, "]");
    const ConfigLocation at = file.Field("in_area_districts", i);
    const std::string district = absl::AsciiStrToUpper(
        absl::StripAsciiWhitespace(config.in_area_districts(i)));
    if (!IsValidOutwardCode(district)) {
      errors.Add(at, path,
                 "not a postcode district (an outward code such as PE1)");
    } else if (!table->in_area_districts_.insert(district).second) {
      errors.Add(at, path, absl::StrCat(district, " is listed more than once"));
    }
  }

  for (int i = 0; i < config.queues_size(); ++i) {
    const config::v1::QueueConfig& queue = config.queues(i);
    const std::string path = absl::StrCat("queues[", i, "]");
    const ConfigLocator at = file.Nested("queues", i);
    if (!IsValidName(queue.name())) {
      errors.Add(at.Field("name"), path + ".name",
                 "must be 1 to 64 characters from [a-z0-9-]");
    } else if (table->queues_.contains(queue.name())) {
      errors.Add(at.Field("name"), path + ".name",
                 absl::StrCat("duplicate queue name \"", queue.name(), "\""));
    } else {
      table->queues_.emplace(queue.name(), queue.due());
      table->queue_names_.push_back(queue.name());
    }
    ValidateDue(queue.due(), at.Nested("due"), path + ".due", errors);
  }
  if (config.queues().empty()) {
    errors.Add(file.self(), "queues", "required: at least one queue");
  }

  // A reference to a queue that does not exist would strand referrals, so
  // every name a rule or the default uses must be a configured queue.
  auto check_queue_ref = [&](const std::string& name, ConfigLocation where,
                             const std::string& path) {
    if (!table->queues_.contains(name)) {
      errors.Add(where, path, absl::StrCat("unknown queue \"", name, "\""));
    }
  };

  absl::flat_hash_set<std::string> rule_names;
  for (int i = 0; i < config.rules_size(); ++i) {
    const config::v1::RoutingRule& rule = config.rules(i);
    const std::string path = absl::StrCat("rules[", i, "]");
    const ConfigLocator at = file.Nested("rules", i);
    if (!IsValidName(rule.name()) || rule.name() == kDefaultRule) {
      errors.Add(at.Field("name"), path + ".name",
                 "must be 1 to 64 characters from [a-z0-9-], not \"default\"");
    } else if (!rule_names.insert(rule.name()).second) {
      errors.Add(at.Field("name"), path + ".name",
                 absl::StrCat("duplicate rule name \"", rule.name(), "\""));
    }

    Rule compiled;
    compiled.name = rule.name();
    const config::v1::RuleMatch& match = rule.match();
    const ConfigLocator match_at = at.Nested("match");
    compiled.agency_types = MatchValues<::referral::v1::AgencyType>(
        match.agency_types(), ::referral::v1::AgencyType_IsValid, match_at,
        "agency_types", path, "must be a specified agency type", errors);
    compiled.concerns = MatchValues<::referral::v1::ConcernCategory>(
        match.concerns(), ::referral::v1::ConcernCategory_IsValid, match_at,
        "concerns", path, "must be a specified concern category", errors);
    if (match.has_immediate_risk()) {
      compiled.immediate_risk = match.immediate_risk();
    }
    if (match.has_postcode_in_area()) {
      compiled.postcode_in_area = match.postcode_in_area();
      // With no districts every postcode is out of area: almost certainly
      // a config mistake that would send every referral away.
      if (config.in_area_districts().empty()) {
        errors.Add(match_at.Field("postcode_in_area"),
                   path + ".match.postcode_in_area",
                   "needs in_area_districts to be configured");
      }
    }
    if (match.has_inside_working_hours()) {
      compiled.inside_working_hours = match.inside_working_hours();
    }

    if (rule.queue().empty() && rule.notify().empty()) {
      errors.Add(at.self(), path, "has no action: set queue or notify");
    }
    if (!rule.queue().empty()) {
      check_queue_ref(rule.queue(), at.Field("queue"), path + ".queue");
      compiled.queue = rule.queue();
    }
    for (int j = 0; j < rule.notify_size(); ++j) {
      check_queue_ref(rule.notify(j), at.Field("notify", j),
                      absl::StrCat(path, ".notify[", j, "]"));
      compiled.notify.push_back(rule.notify(j));
    }
    table->rules_.push_back(std::move(compiled));
  }

  if (config.default_queue().empty()) {
    errors.Add(file.self(), "default_queue",
               "required: referrals that no rule places go there");
  } else {
    check_queue_ref(config.default_queue(), file.Field("default_queue"),
                    "default_queue");
  }

  if (!config.has_immediate_risk_due()) {
    errors.Add(file.self(), "immediate_risk_due",
               "required: the clock for a child who needs protection now");
  } else {
    ValidateDue(config.immediate_risk_due(), file.Nested("immediate_risk_due"),
                "immediate_risk_due", errors);
  }

  if (!errors.empty()) return errors.ToStatus();
  return table;
}

absl::StatusOr<std::unique_ptr<RoutingTable>> RoutingTable::LoadFile(
    std::string_view path) {
  absl::StatusOr<std::string> text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

bool RoutingTable::IsInArea(std::string_view postcode) const {
  const std::string district = PlaceableDistrict(postcode);
  return !district.empty() && in_area_districts_.contains(district);
}

bool RoutingTable::IsOutOfArea(
    const std::vector<std::string>& child_postcodes) const {
  bool any_known = false;
  for (const std::string& postcode : child_postcodes) {
    if (PlaceableDistrict(postcode).empty()) continue;
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
