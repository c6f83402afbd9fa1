// Specification of ToQueueEvent: the one mapping from the store's record of
// a committed change (storage::CommittedChange) to the API's QueueEvent that
// watchers, the lifecycle log and the metrics see.
#include "services/queue_watchers.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "base/timestamps.h"
#include "gtest/gtest.h"

namespace referral::server {
namespace {

using Kind = storage::CommittedChange::Kind;

TEST(ToQueueEventTest, EachKindIsTheApisKindOfTheSameName) {
  const std::vector<std::pair<Kind, v1::QueueEvent::Kind>> kinds = {
      {Kind::kArrived, v1::QueueEvent::KIND_ARRIVED},
      {Kind::kClaimed, v1::QueueEvent::KIND_CLAIMED},
      {Kind::kExtended, v1::QueueEvent::KIND_EXTENDED},
      {Kind::kReleased, v1::QueueEvent::KIND_RELEASED},
      {Kind::kLeaseExpired, v1::QueueEvent::KIND_LEASE_EXPIRED},
      {Kind::kDecided, v1::QueueEvent::KIND_DECIDED},
      {Kind::kDeadLettered, v1::QueueEvent::KIND_DEAD_LETTERED},
      {Kind::kRequeued, v1::QueueEvent::KIND_REQUEUED},
  };
  for (const auto& [kind, expected] : kinds) {
    storage::CommittedChange change;
    change.kind = kind;
    EXPECT_EQ(ToQueueEvent(change).kind(), expected)
        << v1::QueueEvent::Kind_Name(expected);
  }
}

TEST(ToQueueEventTest, CarriesWhatTheStoreReported) {
  const absl::Time at = absl::FromUnixMicros(1'780'000'000'123'456);
  storage::CommittedChange change{.kind = Kind::kClaimed,
                                  .queue = "ifd-triage",
                                  .referral_id = "REF-2026-000042",
                                  .at = at,
                                  .band = v1::PRIORITY_BAND_RAISED,
                                  .due_at = at + absl::Hours(8),
                                  .agency_type = v1::AGENCY_TYPE_POLICE,
                                  .decision = v1::DECISION_UNSPECIFIED,
                                  .worker = "worker-3",
                                  .delivery_attempt = 2,
                                  .notice_only = false};
  v1::QueueEvent event = ToQueueEvent(change);
  EXPECT_EQ(event.queue(), "ifd-triage");
  EXPECT_EQ(event.referral_id(), "REF-2026-000042");
  EXPECT_EQ(FromTimestamp(event.at()), at);
  EXPECT_EQ(event.priority_band(), v1::PRIORITY_BAND_RAISED);
  EXPECT_EQ(FromTimestamp(event.due_at()), at + absl::Hours(8));
  EXPECT_EQ(event.agency_type(), v1::AGENCY_TYPE_POLICE);
  EXPECT_EQ(event.worker(), "worker-3");
  EXPECT_EQ(event.delivery_attempt(), 2);
  EXPECT_FALSE(event.notice_only());

  change.kind = Kind::kDecided;
  change.decision = v1::DECISION_EARLY_HELP;
  EXPECT_EQ(ToQueueEvent(change).decision(), v1::DECISION_EARLY_HELP);
  change.kind = Kind::kArrived;
  change.notice_only = true;
  EXPECT_TRUE(ToQueueEvent(change).notice_only());
}

}  // namespace
}  // namespace referral::server
