// One structured log line per committed change to a referral's place in a
// queue (claimed, released, decided, lease expired, dead-lettered, ...), so
// ops can follow a referral by id through the log. Ids, queue names,
// decisions and counts only.
#ifndef REFERRAL_SERVER_LIFECYCLE_LOG_H_
#define REFERRAL_SERVER_LIFECYCLE_LOG_H_

#include <vector>

#include "referral/v1/broker.pb.h"

namespace referral::server {

// Called with each group of committed events (on the store's commit
// thread). Arrivals are logged by intake as "referral_received", with the
// answer the agency got, so only notices are logged here.
void LogCommittedQueueEvents(const std::vector<v1::QueueEvent>& events);

}  // namespace referral::server

#endif  // REFERRAL_SERVER_LIFECYCLE_LOG_H_
