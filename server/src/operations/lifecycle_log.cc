#include "operations/lifecycle_log.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "base/json_log.h"
#include "services/referral_views.h"

namespace referral::server {
void LogCommittedQueueEvents(const std::vector<v1::QueueEvent>& events) {
  LogLines log;
  for (const v1::QueueEvent& event : events) {
    switch (event.kind()) {
      case v1::QueueEvent::KIND_ARRIVED:
        if (event.notice_only()) {
          log.Add(
              LogLevel::kInfo, "referral_notified",
              {{"referral_id", event.referral_id()}, {"queue", event.queue()}});
        }
        break;
      case v1::QueueEvent::KIND_CLAIMED:
        log.Add(LogLevel::kInfo, "referral_claimed",
                {{"referral_id", event.referral_id()},
                 {"queue", event.queue()},
                 {"delivery_attempt", absl::StrCat(event.delivery_attempt())}});
        break;
      case v1::QueueEvent::KIND_EXTENDED:
        log.Add(
            LogLevel::kDebug, "claim_extended",
            {{"referral_id", event.referral_id()}, {"queue", event.queue()}});
        break;
      case v1::QueueEvent::KIND_RELEASED:
        log.Add(
            LogLevel::kInfo, "referral_released",
            {{"referral_id", event.referral_id()}, {"queue", event.queue()}});
        break;
      case v1::QueueEvent::KIND_DECIDED:
        log.Add(LogLevel::kInfo, "referral_decided",
                {{"referral_id", event.referral_id()},
                 {"queue", event.queue()},
                 {"decision", DecisionLabel(event.decision())}});
        break;
      case v1::QueueEvent::KIND_LEASE_EXPIRED:
        // Someone claimed it and neither decided nor released it in time.
        log.Add(
            LogLevel::kWarning, "lease_expired",
            {{"referral_id", event.referral_id()}, {"queue", event.queue()}});
        break;
      case v1::QueueEvent::KIND_DEAD_LETTERED:
        log.Add(
            LogLevel::kWarning, "referral_dead_lettered",
            {{"referral_id", event.referral_id()}, {"queue", event.queue()}});
        break;
      case v1::QueueEvent::KIND_REQUEUED:
        log.Add(
            LogLevel::kInfo, "referral_requeued",
            {{"referral_id", event.referral_id()}, {"queue", event.queue()}});
        break;
      default:
        break;
    }
  }
}

}  // namespace referral::server
