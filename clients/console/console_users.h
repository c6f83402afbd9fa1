// The triage console's users file: one staff member per line,
// "<name>:<Argon2id encoded hash>", written by `referral_console add-user`
// and read at every sign-in (so a new user needs no restart). Passwords are
// hashed with Argon2id (libargon2); the encoded form carries its own salt
// and cost, so the cost can be raised later without breaking old entries.
#ifndef REFERRAL_CLIENTS_CONSOLE_USERS_H_
#define REFERRAL_CLIENTS_CONSOLE_USERS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace referral::clients {

// Argon2id cost. The defaults follow RFC 9106's second recommended option
// (t=3, 64 MiB, one lane); tests lower them so that a hash takes
// milliseconds.
struct PasswordCost {
  uint32_t iterations = 3;
  uint32_t memory_kib = 64 * 1024;
  uint32_t parallelism = 1;
};

// Staff names become the broker's `worker` and `x-referral-on-behalf-of`
// (and so appear in the audit trail): [A-Za-z0-9._@-], 1..64 bytes.
absl::Status CheckStaffName(absl::string_view name);

// Passwords: 12..1024 bytes. Long passphrases are encouraged; the upper
// bound only stops a sign-in form being used to make the gateway hash
// megabytes.
absl::Status CheckPasswordStrength(absl::string_view password);

// The Argon2id encoded hash ("$argon2id$v=19$m=...,t=...,p=...$salt$hash")
// of `password` with a fresh 16-byte salt from OpenSSL's RAND_bytes.
absl::StatusOr<std::string> HashPassword(absl::string_view password,
                                         const PasswordCost& cost);

// Adds `name` to the users file at `path`, or replaces its hash (a password
// reset). The file is rewritten through a temporary file and rename, mode
// 0600, so a crash leaves the old file or the new one.
absl::Status AddUser(const std::string& path, absl::string_view name,
                     absl::string_view password, const PasswordCost& cost);

// The users file as read from disk.
class UserDirectory {
 public:
  // NotFound when the file does not exist; InvalidArgument naming the line
  // of a malformed entry (never its content).
  static absl::StatusOr<UserDirectory> Load(const std::string& path);

  // True when `name` exists and `password` matches its hash. An unknown
  // name costs the same Argon2id work as a known one, so the response time
  // does not tell which staff names exist.
  bool Verify(absl::string_view name, absl::string_view password) const;

  size_t size() const { return hashes_.size(); }
  bool Contains(absl::string_view name) const {
    return hashes_.count(std::string(name)) > 0;
  }

 private:
  std::map<std::string, std::string> hashes_;  // name -> encoded hash
};

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_CONSOLE_USERS_H_
