#include "security/rate_limiter.h"

#include <algorithm>

namespace referral::server {

absl::Duration RateLimiter::Admit(std::string_view principal, absl::Time now,
                                  double calls) {
  const double cost = std::clamp(calls, 1.0, std::max(1.0, limit_.burst));
  absl::MutexLock lock(&mutex_);
  auto [it, inserted] =
      buckets_.try_emplace(std::string(principal), Bucket{limit_.burst, now});
  Bucket& bucket = it->second;
  if (now > bucket.refilled_at) {
    const double elapsed = absl::ToDoubleSeconds(now - bucket.refilled_at);
    bucket.tokens =
        std::min(limit_.burst, bucket.tokens + elapsed * limit_.per_second);
    bucket.refilled_at = now;
  }
  if (bucket.tokens >= cost) {
    bucket.tokens -= cost;
    return absl::ZeroDuration();
  }
  if (limit_.per_second <= 0) return absl::InfiniteDuration();
  return absl::Seconds((cost - bucket.tokens) / limit_.per_second);
}

}  // namespace referral::server
