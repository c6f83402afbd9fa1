// Per-principal token buckets: a burst is admitted, then calls are admitted
// at the sustained rate, each principal on its own.
#include "security/rate_limiter.h"

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace referral::server {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

TEST(RateLimiterTest, AdmitsABurstThenRefusesWithARetryHint) {
  RateLimiter limiter({.per_second = 10, .burst = 5});
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(limiter.Admit("cambs-police", kStart), absl::ZeroDuration());
  }
  const absl::Duration wait = limiter.Admit("cambs-police", kStart);
  EXPECT_EQ(wait, absl::Milliseconds(100));
}

TEST(RateLimiterTest, RefillsAtTheSustainedRate) {
  RateLimiter limiter({.per_second = 10, .burst = 5});
  for (int i = 0; i < 5; ++i) limiter.Admit("cambs-police", kStart);
  EXPECT_GT(limiter.Admit("cambs-police", kStart), absl::ZeroDuration());
  // 100 ms later one token has come back, and only one.
  const absl::Time later = kStart + absl::Milliseconds(100);
  EXPECT_EQ(limiter.Admit("cambs-police", later), absl::ZeroDuration());
  EXPECT_GT(limiter.Admit("cambs-police", later), absl::ZeroDuration());
}

TEST(RateLimiterTest, NeverHoldsMoreThanTheBurst) {
  RateLimiter limiter({.per_second = 10, .burst = 3});
  limiter.Admit("school-one", kStart);
  const absl::Time much_later = kStart + absl::Hours(1);
  int admitted = 0;
  while (limiter.Admit("school-one", much_later) == absl::ZeroDuration()) {
    ++admitted;
  }
  EXPECT_EQ(admitted, 3);
}

TEST(RateLimiterTest, EachPrincipalHasItsOwnBucket) {
  RateLimiter limiter({.per_second = 1, .burst = 1});
  EXPECT_EQ(limiter.Admit("cambs-police", kStart), absl::ZeroDuration());
  EXPECT_GT(limiter.Admit("cambs-police", kStart), absl::ZeroDuration());
  EXPECT_EQ(limiter.Admit("school-one", kStart), absl::ZeroDuration());
}

TEST(RateLimiterTest, ABatchCountsEachOfItsItems) {
  RateLimiter limiter({.per_second = 10, .burst = 20});
  EXPECT_EQ(limiter.Admit("school-one", kStart, 15), absl::ZeroDuration());
  // Five tokens are left: a batch of eight waits for the other three.
  EXPECT_EQ(limiter.Admit("school-one", kStart, 8), absl::Milliseconds(300));
  EXPECT_EQ(limiter.Admit("school-one", kStart, 5), absl::ZeroDuration());
  EXPECT_GT(limiter.Admit("school-one", kStart), absl::ZeroDuration());
}

TEST(RateLimiterTest, ABatchLargerThanTheBurstCostsTheWholeBurst) {
  RateLimiter limiter({.per_second = 10, .burst = 20});
  EXPECT_EQ(limiter.Admit("school-one", kStart, 500), absl::ZeroDuration());
  EXPECT_EQ(limiter.Admit("school-one", kStart, 500), absl::Seconds(2));
}

}  // namespace
}  // namespace referral::server
