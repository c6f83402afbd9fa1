// Fuzzes the routing configuration parser (RoutingTable::Parse in
// server/src/rules/routing_table.h, over text_config.h): the council edits this
// file by hand, so any text may reach it, and a mistake must be reported,
// never crash the broker at start-up or on ReloadConfig.
//
// Properties, beyond "never crash, no memory error, no UB":
// - a rejection is INVALID_ARGUMENT located in the source ("fuzz:...");
// - a table it accepts keeps routing's promises for a spread of referrals:
//   every referral gets a configured queue, the notified queues are
//   configured, distinct and never the work queue itself, and the queue has
//   a due time no earlier than receipt.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "rules/routing_table.h"
#include "rules/working_calendar.h"

namespace {

using referral::server::RouteDecision;
using referral::server::RoutingInput;
using referral::server::RoutingTable;
using referral::server::WorkingCalendar;

void Fail(const char* what) {
  // Only the property: the input is in the crash file, never in the log.
  std::fprintf(stderr, "routing_table_fuzz: %s\n", what);
  std::abort();
}

const WorkingCalendar& Calendar() {
  static const WorkingCalendar* calendar = [] {
    absl::StatusOr<WorkingCalendar> loaded =
        WorkingCalendar::LoadFile(REFERRAL_CONFIG_DIR "/calendar.txtpb");
    if (!loaded.ok()) Fail("cannot load server/config/calendar.txtpb");
    return new WorkingCalendar(*std::move(loaded));
  }();
  return *calendar;
}

// Referrals that between them meet every kind of rule condition: each
// agency type and concern, immediate risk or not, in area, out of area and
// no postcode, inside and outside working hours.
std::vector<RoutingInput> Inputs() {
  std::vector<RoutingInput> inputs;
  for (int agency = 0; agency <= 13; ++agency) {
    RoutingInput in;
    in.agency_type = static_cast<referral::v1::AgencyType>(agency);
    in.concerns.push_back(
        static_cast<referral::v1::ConcernCategory>(1 + agency % 22));
    in.concerns.push_back(
        static_cast<referral::v1::ConcernCategory>(1 + (agency * 7) % 22));
    in.immediate_risk = agency % 2 == 0;
    in.inside_working_hours = agency % 3 != 0;
    switch (agency % 4) {
      case 0:
        in.child_postcodes = {"PE1 1XX"};
        break;
      case 1:
        in.child_postcodes = {"CB2 1TN", "PE3 6AB"};
        break;
      case 2:
        in.child_postcodes = {"CB2 1TN"};
        break;
      default:
        in.child_postcodes = {""};
        break;
    }
    inputs.push_back(std::move(in));
  }
  return inputs;
}

void CheckDecision(const RoutingTable& table, const RoutingInput& in) {
  const RouteDecision decision = table.Route(in);
  if (!table.HasQueue(decision.queue)) Fail("routed to an unknown queue");
  absl::flat_hash_set<std::string> seen;
  for (const std::string& notified : decision.notified_queues) {
    if (!table.HasQueue(notified)) Fail("notified an unknown queue");
    if (notified == decision.queue) Fail("notified the work queue itself");
    if (!seen.insert(notified).second) Fail("notified a queue twice");
  }
  static const absl::Time kReceived = absl::FromCivil(
      absl::CivilSecond(2026, 3, 13, 16, 45, 0), absl::UTCTimeZone());
  absl::StatusOr<absl::Time> due =
      table.DueAt(decision.queue, in.immediate_risk, kReceived, Calendar());
  if (!due.ok()) Fail("no due time for the queue routed to");
  if (*due < kReceived) Fail("due before it was received");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::unique_ptr<RoutingTable>> table =
      RoutingTable::Parse(text, "fuzz");
  if (!table.ok()) {
    if (table.status().code() != absl::StatusCode::kInvalidArgument) {
      Fail("rejection is not INVALID_ARGUMENT");
    }
    if (!absl::StartsWith(table.status().message(), "fuzz:")) {
      Fail("error not located in the source");
    }
    return 0;
  }
  static const std::vector<RoutingInput> inputs = Inputs();
  for (const RoutingInput& in : inputs) CheckDecision(**table, in);
  return 0;
}
