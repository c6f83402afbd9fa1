// Console sessions: random tokens, idle and absolute expiry, sign-out, and
// constant-time token comparison for the CSRF check.
#include "console_sessions.h"

#include <gtest/gtest.h>

#include <set>

namespace referral::clients {
namespace {

class ConsoleSessionsTest : public ::testing::Test {
 protected:
  SessionOptions Options() {
    SessionOptions options;
    options.idle_timeout = absl::Minutes(30);
    options.absolute_timeout = absl::Hours(10);
    options.clock = [this] { return now_; };
    return options;
  }
  absl::Time now_ = absl::FromUnixSeconds(1'790'000'000);
};

TEST_F(ConsoleSessionsTest, TokensAreLongRandomAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string token = RandomToken();
    EXPECT_EQ(token.size(), 64u);
    EXPECT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos);
    seen.insert(token);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST_F(ConsoleSessionsTest, FindReturnsTheSessionWithItsCsrfToken) {
  SessionStore store(Options());
  NewSession created = store.Create("alice");
  EXPECT_NE(created.session_token, created.csrf_token);
  std::optional<Session> found = store.Find(created.session_token);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->user, "alice");
  EXPECT_EQ(found->csrf_token, created.csrf_token);
  EXPECT_FALSE(store.Find(created.csrf_token).has_value());
  EXPECT_FALSE(store.Find("").has_value());
  EXPECT_FALSE(store.Find(RandomToken()).has_value());
}

TEST_F(ConsoleSessionsTest, IdleSessionExpiresAndUseKeepsItAlive) {
  SessionStore store(Options());
  NewSession created = store.Create("alice");
  now_ += absl::Minutes(29);
  ASSERT_TRUE(store.Find(created.session_token).has_value());  // counts as use
  now_ += absl::Minutes(29);
  ASSERT_TRUE(store.Find(created.session_token).has_value());
  now_ += absl::Minutes(30);
  EXPECT_FALSE(store.Find(created.session_token).has_value());
  EXPECT_EQ(store.size(), 0u);  // removed, not just refused
}

TEST_F(ConsoleSessionsTest, AbsoluteLifetimeEndsAnActiveSession) {
  SessionStore store(Options());
  NewSession created = store.Create("alice");
  for (int i = 0; i < 40; ++i) {  // 40 x 15 min = 10 h of steady use
    now_ += absl::Minutes(15);
    if (i < 39) {
      ASSERT_TRUE(store.Find(created.session_token).has_value()) << i;
    }
  }
  EXPECT_FALSE(store.Find(created.session_token).has_value());
}

TEST_F(ConsoleSessionsTest, IsLiveDoesNotExtendTheSession) {
  SessionStore store(Options());
  NewSession created = store.Create("alice");
  now_ += absl::Minutes(20);
  EXPECT_TRUE(store.IsLive(created.session_token));
  now_ += absl::Minutes(20);
  EXPECT_FALSE(store.IsLive(created.session_token));
}

TEST_F(ConsoleSessionsTest, SignOutDeletesTheSession) {
  SessionStore store(Options());
  NewSession alice = store.Create("alice");
  NewSession bob = store.Create("bob");
  store.Delete(alice.session_token);
  EXPECT_FALSE(store.Find(alice.session_token).has_value());
  EXPECT_FALSE(store.IsLive(alice.session_token));
  EXPECT_TRUE(store.Find(bob.session_token).has_value());
}

TEST_F(ConsoleSessionsTest, SweepDropsOnlyExpiredSessions) {
  SessionStore store(Options());
  NewSession old = store.Create("alice");
  now_ += absl::Minutes(20);
  NewSession fresh = store.Create("bob");
  now_ += absl::Minutes(15);
  store.Sweep();
  EXPECT_EQ(store.size(), 1u);
  EXPECT_FALSE(store.IsLive(old.session_token));
  EXPECT_TRUE(store.Find(fresh.session_token).has_value());
}

TEST_F(ConsoleSessionsTest, TableIsBoundedByDroppingTheOldest) {
  SessionOptions options = Options();
  options.max_sessions = 3;
  SessionStore store(options);
  NewSession first = store.Create("a");
  for (const char* user : {"b", "c", "d"}) {
    now_ += absl::Seconds(1);
    store.Create(user);
  }
  EXPECT_EQ(store.size(), 3u);
  EXPECT_FALSE(store.Find(first.session_token).has_value());
}

TEST(TokensEqualTest, ComparesWholeValues) {
  const std::string token = RandomToken();
  EXPECT_TRUE(TokensEqual(token, std::string(token)));
  std::string changed = token;
  changed.back() = changed.back() == 'a' ? 'b' : 'a';
  EXPECT_FALSE(TokensEqual(token, changed));
  EXPECT_FALSE(TokensEqual(token, token.substr(0, 63)));
  EXPECT_FALSE(TokensEqual(token, ""));
  EXPECT_TRUE(TokensEqual("", ""));
}

}  // namespace
}  // namespace referral::clients
