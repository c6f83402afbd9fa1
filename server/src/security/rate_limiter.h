// Per-principal request rate limits (token buckets), so one partner system
// stuck in a retry loop cannot starve the others. Generous by default: a
// council front door sees tens of referrals a day, and a batch upload after
// a weekend a few hundred at once.
#ifndef REFERRAL_SERVER_RATE_LIMITER_H_
#define REFERRAL_SERVER_RATE_LIMITER_H_

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace referral::server {

struct RateLimit {
  // Sustained calls per second, and how many may arrive at once.
  double per_second = 200;
  double burst = 2000;
};

class RateLimiter {
 public:
  explicit RateLimiter(RateLimit limit) : limit_(limit) {}

  // Zero when the call may go ahead (and is counted as `calls` calls: a
  // batch counts each of its items); otherwise how long the caller should
  // wait before it would be admitted. A cost above the burst is charged as
  // the whole burst, so that no batch can be refused forever.
  absl::Duration Admit(std::string_view principal, absl::Time now,
                       double calls = 1);

 private:
  struct Bucket {
    double tokens;
    absl::Time refilled_at;
  };

  const RateLimit limit_;
  absl::Mutex mutex_;
  // One bucket per principal named in the principals file, so bounded.
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace referral::server

#endif  // REFERRAL_SERVER_RATE_LIMITER_H_
