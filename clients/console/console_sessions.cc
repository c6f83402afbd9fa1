#include "console_sessions.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/escaping.h"

namespace referral::clients {

std::string RandomToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // Without randomness no token is safe to hand out; the gateway cannot
    // go on serving sign-ins.
    std::abort();
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

bool TokensEqual(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

SessionStore::SessionStore(SessionOptions options)
    : options_(std::move(options)) {}

std::string SessionStore::KeyOf(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

absl::Time SessionStore::ExpiryOf(const Entry& entry) const {
  return std::min(entry.last_used + options_.idle_timeout,
                  entry.session.created_at + options_.absolute_timeout);
}

NewSession SessionStore::Create(absl::string_view user) {
  const absl::Time now = options_.clock();
  NewSession created;
  created.session_token = RandomToken();
  created.csrf_token = RandomToken();
  Entry entry;
  entry.session.user = std::string(user);
  entry.session.csrf_token = created.csrf_token;
  entry.session.created_at = now;
  entry.last_used = now;
  entry.session.expires_at = ExpiryOf(entry);
  created.session = entry.session;

  absl::MutexLock lock(&mu_);
  if (sessions_.size() >= options_.max_sessions) {
    auto oldest = std::min_element(
        sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
          return a.second.session.created_at < b.second.session.created_at;
        });
    sessions_.erase(oldest);
  }
  sessions_[KeyOf(created.session_token)] = std::move(entry);
  return created;
}

std::optional<Session> SessionStore::Find(absl::string_view session_token) {
  if (session_token.empty()) return std::nullopt;
  const absl::Time now = options_.clock();
  absl::MutexLock lock(&mu_);
  auto found = sessions_.find(KeyOf(session_token));
  if (found == sessions_.end()) return std::nullopt;
  if (now >= ExpiryOf(found->second)) {
    sessions_.erase(found);
    return std::nullopt;
  }
  found->second.last_used = now;
  found->second.session.expires_at = ExpiryOf(found->second);
  return found->second.session;
}

bool SessionStore::IsLive(absl::string_view session_token) {
  const absl::Time now = options_.clock();
  absl::MutexLock lock(&mu_);
  auto found = sessions_.find(KeyOf(session_token));
  return found != sessions_.end() && now < ExpiryOf(found->second);
}

void SessionStore::Delete(absl::string_view session_token) {
  absl::MutexLock lock(&mu_);
  sessions_.erase(KeyOf(session_token));
}

void SessionStore::Sweep() {
  const absl::Time now = options_.clock();
  absl::MutexLock lock(&mu_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now >= ExpiryOf(it->second)) {
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t SessionStore::size() {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

}  // namespace referral::clients
