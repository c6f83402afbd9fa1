// Collects every problem with a request as "field.path: reason" so a caller
// gets one INVALID_ARGUMENT listing them all. Messages must never quote the
// offending value: it may be personal data.
#ifndef REFERRAL_SERVER_FIELD_VIOLATIONS_H_
#define REFERRAL_SERVER_FIELD_VIOLATIONS_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"

namespace referral::server {

class FieldViolations {
 public:
  void Add(std::string_view field_path, std::string_view reason) {
    // Debian's Abseil has its own string_view, so absl::StrCat does not take
    // std::string_view: concatenate as std::string.
    std::string violation(field_path);
    violation.append(": ").append(reason);
    violations_.push_back(std::move(violation));
  }
  bool empty() const { return violations_.empty(); }
  const std::vector<std::string>& violations() const { return violations_; }

  // OK when there are none; otherwise INVALID_ARGUMENT listing all of them.
  absl::Status ToStatus() const {
    if (violations_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(violations_, "; "));
  }

 private:
  std::vector<std::string> violations_;
};

}  // namespace referral::server

#endif  // REFERRAL_SERVER_FIELD_VIOLATIONS_H_
