#include "console_users.h"

#include <argon2.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace referral::clients {
namespace {

constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;
constexpr size_t kMaxStaffNameBytes = 64;
constexpr size_t kMinPasswordBytes = 12;
constexpr size_t kMaxPasswordBytes = 1024;

bool StaffNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' || c == '-';
}

// Reads the file's lines; an absent file is an empty list for AddUser.
absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return absl::NotFoundError(path + ": no such file");
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": cannot read: ", std::strerror(errno)));
  }
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

}  // namespace

absl::Status CheckStaffName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxStaffNameBytes) {
    return absl::InvalidArgumentError("user: must be 1 to 64 characters");
  }
  for (char c : name) {
    if (!StaffNameChar(c)) {
      return absl::InvalidArgumentError(
          "user: only letters, digits and . _ @ - are allowed");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPasswordStrength(absl::string_view password) {
  if (password.size() < kMinPasswordBytes) {
    return absl::InvalidArgumentError(
        "password: must be at least 12 characters");
  }
  if (password.size() > kMaxPasswordBytes) {
    return absl::InvalidArgumentError(
        "password: must be at most 1024 characters");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> HashPassword(absl::string_view password,
                                         const PasswordCost& cost) {
  unsigned char salt[kSaltBytes];
  if (RAND_bytes(salt, sizeof(salt)) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  const size_t encoded_length =
      argon2_encodedlen(cost.iterations, cost.memory_kib, cost.parallelism,
                        kSaltBytes, kHashBytes, Argon2_id);
  std::string encoded(encoded_length, '\0');
  const int result = argon2id_hash_encoded(
      cost.iterations, cost.memory_kib, cost.parallelism, password.data(),
      password.size(), salt, sizeof(salt), kHashBytes, encoded.data(),
      encoded.size());
  if (result != ARGON2_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("argon2id: ", argon2_error_message(result)));
  }
  encoded.resize(std::strlen(encoded.c_str()));
  return encoded;
}

absl::Status AddUser(const std::string& path, absl::string_view name,
                     absl::string_view password, const PasswordCost& cost) {
  if (absl::Status valid = CheckStaffName(name); !valid.ok()) return valid;
  if (absl::Status strong = CheckPasswordStrength(password); !strong.ok()) {
    return strong;
  }
  absl::StatusOr<std::string> hash = HashPassword(password, cost);
  if (!hash.ok()) return hash.status();

  absl::StatusOr<std::vector<std::string>> lines = ReadLines(path);
  if (!lines.ok() && !absl::IsNotFound(lines.status())) return lines.status();
  std::string content;
  bool replaced = false;
  const std::string entry = absl::StrCat(name, ":", *hash);
  if (lines.ok()) {
    const std::string prefix = absl::StrCat(name, ":");
    for (const std::string& line : *lines) {
      if (absl::StartsWith(line, prefix)) {
        absl::StrAppend(&content, entry, "\n");
        replaced = true;
      } else {
        absl::StrAppend(&content, line, "\n");
      }
    }
  } else {
    content =
        "# referral_console users: <name>:<Argon2id hash>. Written by "
        "`referral_console add-user`.\n";
  }
  if (!replaced) absl::StrAppend(&content, entry, "\n");

  // Written beside the target and renamed over it: readers see the old file
  // or the new one, never half of either.
  const std::string temp = path + ".tmp";
  const int fd =
      ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(temp, ": cannot create: ", std::strerror(errno)));
  }
  // O_CREAT's mode does not apply to an existing temporary file.
  bool ok = ::fchmod(fd, 0600) == 0;
  size_t written = 0;
  while (ok && written < content.size()) {
    const ssize_t n =
        ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved_errno = errno;
  ::close(fd);
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = ok ? errno : saved_errno;
    ::unlink(temp.c_str());
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": cannot write: ", std::strerror(error)));
  }
  return absl::OkStatus();
}

absl::StatusOr<UserDirectory> UserDirectory::Load(const std::string& path) {
  absl::StatusOr<std::vector<std::string>> lines = ReadLines(path);
  if (!lines.ok()) return lines.status();
  UserDirectory directory;
  int number = 0;
  for (const std::string& raw : *lines) {
    ++number;
    absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> parts =
        absl::StrSplit(line, absl::MaxSplits(':', 1));
    if (parts.size() != 2 || !CheckStaffName(parts[0]).ok() ||
        !absl::StartsWith(parts[1], "$argon2id$")) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": expected <name>:<argon2id hash>"));
    }
    directory.hashes_[std::string(parts[0])] = std::string(parts[1]);
  }
  return directory;
}

bool UserDirectory::Verify(absl::string_view name,
                           absl::string_view password) const {
  if (hashes_.empty() || password.size() > kMaxPasswordBytes) return false;
  auto found = hashes_.find(std::string(name));
  // An unknown name is checked against another user's hash (same cost) and
  // then refused whatever the result.
  const std::string& hash =
      found != hashes_.end() ? found->second : hashes_.begin()->second;
  const bool matches = argon2id_verify(hash.c_str(), password.data(),
                                       password.size()) == ARGON2_OK;
  return found != hashes_.end() && matches;
}

}  // namespace referral::clients
