// Signed-in staff sessions of the triage console, in memory: a session
// token (the HttpOnly cookie) and a CSRF token (sent by the page in a header
// on every state-changing request) per session, both 256 bits from OpenSSL's
// RAND_bytes. A session ends after an idle period, at an absolute lifetime
// whatever its use, or at sign-out. A gateway restart signs everyone out.
#ifndef REFERRAL_CLIENTS_CONSOLE_SESSIONS_H_
#define REFERRAL_CLIENTS_CONSOLE_SESSIONS_H_

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace referral::clients {

struct SessionOptions {
  absl::Duration idle_timeout = absl::Minutes(30);
  absl::Duration absolute_timeout = absl::Hours(10);  // one working shift
  // Sign-ins beyond this many live sessions drop the oldest one, so a
  // client that signs in repeatedly cannot grow the table without bound.
  size_t max_sessions = 1000;
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

// What the gateway needs of a live session.
struct Session {
  std::string user;
  std::string csrf_token;
  absl::Time created_at;
  absl::Time expires_at;  // the earlier of the idle and absolute expiry
};

// The tokens handed out at sign-in.
struct NewSession {
  std::string session_token;  // goes in the cookie only
  std::string csrf_token;
  Session session;
};

// 32 bytes from RAND_bytes, as 64 lowercase hex characters.
std::string RandomToken();

// True when both strings are equal, in time that depends only on their
// lengths (CRYPTO_memcmp).
bool TokensEqual(absl::string_view a, absl::string_view b);

class SessionStore {
 public:
  explicit SessionStore(SessionOptions options = {});

  NewSession Create(absl::string_view user);

  // The live session for `session_token`, its idle expiry pushed forward;
  // nullopt for an unknown, expired or signed-out token (expired ones are
  // removed here).
  std::optional<Session> Find(absl::string_view session_token);

  // Whether the session is still live, without counting this as use (for
  // a long-lived event stream, which must not keep a session alive).
  bool IsLive(absl::string_view session_token);

  // Sign-out. Unknown tokens are ignored.
  void Delete(absl::string_view session_token);

  // Drops expired sessions; Find also does so for the one it looks up.
  void Sweep();

  size_t size();

 private:
  struct Entry {
    Session session;
    absl::Time last_used;
  };
  // Keyed by SHA-256 of the token, so the map's comparisons (which are not
  // constant-time) work on a value an attacker cannot steer byte by byte,
  // and a memory dump holds no usable token.
  static std::string KeyOf(absl::string_view token);
  absl::Time ExpiryOf(const Entry& entry) const;

  const SessionOptions options_;
  absl::Mutex mu_;
  std::map<std::string, Entry> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_CONSOLE_SESSIONS_H_
