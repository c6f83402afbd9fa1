#include "rules/front_door_rules.h"

#include <utility>

#include "base/status_macros.h"

namespace referral::server {
namespace {

absl::StatusOr<std::shared_ptr<const FrontDoorRules>> LoadRules(
    const std::string& routing_file, const std::string& calendar_file) {
  auto rules = std::make_shared<FrontDoorRules>();
  ASSIGN_OR_RETURN(rules->routing, RoutingTable::LoadFile(routing_file));
  ASSIGN_OR_RETURN(WorkingCalendar calendar,
                   WorkingCalendar::LoadFile(calendar_file));
  rules->calendar = std::make_unique<WorkingCalendar>(std::move(calendar));
  return rules;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FrontDoorRulesSource>>
FrontDoorRulesSource::Load(std::string routing_file,
                           std::string calendar_file) {
  std::unique_ptr<FrontDoorRulesSource> source(new FrontDoorRulesSource(
      std::move(routing_file), std::move(calendar_file)));
  RETURN_IF_ERROR(source->Reload());
  return source;
}

std::shared_ptr<const FrontDoorRules> FrontDoorRulesSource::Current() const {
  absl::MutexLock lock(&mutex_);
  return current_;
}

absl::Status FrontDoorRulesSource::Reload() {
  ASSIGN_OR_RETURN(std::shared_ptr<const FrontDoorRules> rules,
                   LoadRules(routing_file_, calendar_file_));
  absl::MutexLock lock(&mutex_);
  current_ = std::move(rules);
  return absl::OkStatus();
}

}  // namespace referral::server
