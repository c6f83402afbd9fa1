// The front door's current rules: the routing table and the working-day
// calendar, loaded from their text-format files and swapped atomically on
// reload. A bad file on reload leaves the old rules in force.
#ifndef REFERRAL_SERVER_FRONT_DOOR_RULES_H_
#define REFERRAL_SERVER_FRONT_DOOR_RULES_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "rules/routing_table.h"
#include "rules/working_calendar.h"

namespace referral::server {

struct FrontDoorRules {
  std::unique_ptr<RoutingTable> routing;
  std::unique_ptr<WorkingCalendar> calendar;
};

class FrontDoorRulesSource {
 public:
  // Loads both files; the error names the file, line and problem.
  static absl::StatusOr<std::unique_ptr<FrontDoorRulesSource>> Load(
      std::string routing_file, std::string calendar_file);

  // The rules in force; callers keep the pointer for one request so a
  // concurrent reload never changes rules under them.
  std::shared_ptr<const FrontDoorRules> Current() const;

  // Re-reads both files. On error the old rules stay in force.
  absl::Status Reload();

 private:
  FrontDoorRulesSource(std::string routing_file, std::string calendar_file)
      : routing_file_(std::move(routing_file)),
        calendar_file_(std::move(calendar_file)) {}

  const std::string routing_file_;
  const std::string calendar_file_;
  mutable absl::Mutex mutex_;
  std::shared_ptr<const FrontDoorRules> current_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace referral::server

#endif  // REFERRAL_SERVER_FRONT_DOOR_RULES_H_
