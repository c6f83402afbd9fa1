// RoutingTable: decides which work queue a referral goes to, which queues
// are told about it, and when it is due, from a council-edited RoutingConfig
// (server/config/routing.txtpb). Config mistakes are reported with the file
// line so they can be fixed before the broker starts routing.
#ifndef REFERRAL_SERVER_ROUTING_TABLE_H_
#define REFERRAL_SERVER_ROUTING_TABLE_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "referral/v1/referral.pb.h"
#include "rules/working_calendar.h"
#include "server/v1/broker_config.pb.h"

namespace referral::server {

// What routing looks at: a small projection of a validated referral, so
// routing never sees personal details beyond the postcodes.
struct RoutingInput {
  ::referral::v1::AgencyType agency_type =
      ::referral::v1::AGENCY_TYPE_UNSPECIFIED;
  std::vector<::referral::v1::ConcernCategory> concerns;
  bool immediate_risk = false;
  // One per child, normalised ("PE1 1XX"); empty when a child has none.
  std::vector<std::string> child_postcodes;
  // Received inside working hours (WorkingCalendar::IsWorkingTime). Defaults
  // to false so a caller that forgets it over-notifies out-of-hours teams
  // rather than leaving them uninformed.
  bool inside_working_hours = false;
};

struct RouteDecision {
  std::string queue;  // the work queue; always a configured queue
  // Queues told about the referral, in rule order: no duplicates and never
  // `queue` itself.
  std::vector<std::string> notified_queues;
  // The rule that chose `queue`, or "default" when none did.
  std::string rule;
};

class RoutingTable {
 public:
  // The RouteDecision::rule of a referral no rule placed.
  static constexpr std::string_view kDefaultRule = "default";

  // Parses and validates a RoutingConfig in text format. All errors are
  // INVALID_ARGUMENT located in the source, joined with "; ":
  //   syntax:   "<source_name>:<line>:<column>: <reason>"
  //   semantic: "<source_name>:<line>:<column>: <field path>: <reason>"
  // (a required field that is missing has no line: "<source_name>: ...").
  static absl::StatusOr<std::unique_ptr<RoutingTable>> Parse(
      std::string_view text, std::string_view source_name);
  // Parse() on the contents of a file; NOT_FOUND when it cannot be read.
  static absl::StatusOr<std::unique_ptr<RoutingTable>> LoadFile(
      std::string_view path);

  RoutingTable(const RoutingTable&) = delete;
  RoutingTable& operator=(const RoutingTable&) = delete;

  // Every referral gets a queue: the first matching rule with a queue, else
  // the default queue. Notify queues accumulate from every matching rule.
  RouteDecision Route(const RoutingInput& in) const;

  // When a referral received at `received` on `queue` is due. An
  // immediate-risk referral is due at the earlier of the queue's clock and
  // the immediate-risk clock, whatever the queue. NOT_FOUND for an unknown
  // queue.
  absl::StatusOr<absl::Time> DueAt(const std::string& queue,
                                   bool immediate_risk, absl::Time received,
                                   const WorkingCalendar& calendar) const;

  // Configured queue names, in file order.
  const std::vector<std::string>& queue_names() const { return queue_names_; }
  bool HasQueue(std::string_view queue) const {
    // Debian's Abseil has its own string_view type, distinct from std's.
    return queues_.contains(absl::string_view(queue.data(), queue.size()));
  }

  // True when the postcode's district is one of the in-area districts.
  // False for an empty or unrecognisable postcode.
  bool IsInArea(std::string_view postcode) const;
  // At least one child has a recognisable postcode and none is in area.
  bool IsOutOfArea(const std::vector<std::string>& child_postcodes) const;

  const config::v1::RoutingConfig& config() const { return config_; }

 private:
  struct Rule {
    std::string name;
    std::vector<::referral::v1::AgencyType> agency_types;
    std::vector<::referral::v1::ConcernCategory> concerns;
    std::optional<bool> immediate_risk;
    std::optional<bool> postcode_in_area;
    std::optional<bool> inside_working_hours;
    std::string queue;  // empty: this rule only notifies
    std::vector<std::string> notify;
  };

  explicit RoutingTable(config::v1::RoutingConfig config);

  bool Matches(const Rule& rule, const RoutingInput& in,
               bool out_of_area) const;
  static absl::Time ApplyDuePolicy(const config::v1::DuePolicy& policy,
                                   absl::Time received,
                                   const WorkingCalendar& calendar);

  config::v1::RoutingConfig config_;
  std::vector<std::string> queue_names_;
  absl::flat_hash_map<std::string, config::v1::DuePolicy> queues_;
  std::vector<Rule> rules_;
  absl::flat_hash_set<std::string> in_area_districts_;
};

}  // namespace referral::server

#endif  // REFERRAL_SERVER_ROUTING_TABLE_H_
