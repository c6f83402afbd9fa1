// The identifier alphabet shared by the names the broker stores with
// referrals and writes to audit records and logs: work queue names, routing
// rule names, principal names and agency ids. One definition, so a name the
// routing or principals file accepts is always one a request may use.
#ifndef REFERRAL_SERVER_NAMES_H_
#define REFERRAL_SERVER_NAMES_H_

#include <cstddef>
#include <string_view>

namespace referral::server {

// The longest name, in bytes.
inline constexpr std::size_t kMaxNameBytes = 64;

// True when `name` is 1 to kMaxNameBytes characters from [a-z0-9-]: safe to
// put in storage keys, file names and log lines unquoted, and free of
// look-alike characters. The storage layer enforces the same rule on the
// keys it writes (keys::IsValidName).
bool IsValidName(std::string_view name);

}  // namespace referral::server

#endif  // REFERRAL_SERVER_NAMES_H_
