#include "services/request_checks.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "rules/field_violations.h"
#include "rules/names.h"

namespace referral::server {
namespace {

constexpr int kMaxClaim = 100;
constexpr size_t kMaxReasonBytes = 500;
constexpr size_t kMaxRationaleBytes = 10000;
constexpr size_t kMaxFeedbackBytes = 2000;
constexpr size_t kMaxWorkerBytes = 128;
constexpr size_t kMaxTokenBytes = 128;

bool IsWorkerChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '_' || c == '@' || c == '-';
}

bool IsBlank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return absl::ascii_isspace(static_cast<unsigned char>(c));
  });
}

void CheckQueue(std::string_view queue, FieldViolations& violations) {
  if (queue.empty()) {
    violations.Add("queue", "is required");
  } else if (!IsValidName(queue)) {
    violations.Add("queue", "must be 1 to 64 of [a-z0-9-]");
  }
}

void CheckId(std::string_view referral_id, FieldViolations& violations) {
  if (referral_id.empty()) violations.Add("referral_id", "is required");
}

void CheckToken(std::string_view token, FieldViolations& violations) {
  if (token.empty()) {
    violations.Add("lease_token", "is required");
  } else if (token.size() > kMaxTokenBytes) {
    violations.Add("lease_token", "is too long");
  }
}

void CheckLease(int seconds, absl::Duration max_lease, bool required,
                FieldViolations& violations) {
  if (seconds < 0 || (required && seconds == 0)) {
    violations.Add("lease_seconds",
                   required ? "must be positive" : "must not be negative");
  } else if (absl::Seconds(seconds) > max_lease) {
    violations.Add(
        "lease_seconds",
        absl::StrCat("must be at most ", absl::ToInt64Seconds(max_lease)));
  }
}

void CheckText(std::string_view field, std::string_view text, size_t max_bytes,
               bool required, FieldViolations& violations) {
  if (required && IsBlank(text)) {
    violations.Add(field, "is required");
  } else if (text.size() > max_bytes) {
    violations.Add(field,
                   absl::StrCat("must be at most ", max_bytes, " bytes"));
  }
}

}  // namespace

int PageSize(int requested, int default_size, int max_size) {
  if (requested <= 0) return default_size;
  return std::min(requested, max_size);
}

absl::Status CheckReferralId(std::string_view referral_id) {
  FieldViolations violations;
  CheckId(referral_id, violations);
  return violations.ToStatus();
}

absl::Status CheckQueueField(std::string_view queue) {
  FieldViolations violations;
  CheckQueue(queue, violations);
  return violations.ToStatus();
}

absl::Status CheckListQueue(const v1::ListQueueRequest& request) {
  FieldViolations violations;
  CheckQueue(request.queue(), violations);
  if (request.page().page_size() < 0) {
    violations.Add("page.page_size", "must not be negative");
  }
  return violations.ToStatus();
}

absl::Status CheckClaim(const v1::ClaimReferralsRequest& request,
                        absl::Duration max_lease) {
  FieldViolations violations;
  CheckQueue(request.queue(), violations);
  if (request.max() < 1 || request.max() > kMaxClaim) {
    violations.Add("max", absl::StrCat("must be 1 to ", kMaxClaim));
  }
  CheckLease(request.lease_seconds(), max_lease, /*required=*/false,
             violations);
  const std::string& worker = request.worker();
  if (worker.empty()) {
    violations.Add("worker", "is required");
  } else if (worker.size() > kMaxWorkerBytes ||
             !std::all_of(worker.begin(), worker.end(), IsWorkerChar)) {
    violations.Add("worker", "must be 1 to 128 of [A-Za-z0-9._@-]");
  }
  return violations.ToStatus();
}

absl::Status CheckExtend(const v1::ExtendClaimRequest& request,
                         absl::Duration max_lease) {
  FieldViolations violations;
  CheckId(request.referral_id(), violations);
  CheckToken(request.lease_token(), violations);
  CheckLease(request.lease_seconds(), max_lease, /*required=*/true, violations);
  return violations.ToStatus();
}

absl::Status CheckRelease(const v1::ReleaseReferralRequest& request) {
  FieldViolations violations;
  CheckId(request.referral_id(), violations);
  CheckToken(request.lease_token(), violations);
  CheckText("reason", request.reason(), kMaxReasonBytes, /*required=*/true,
            violations);
  return violations.ToStatus();
}

absl::Status CheckDecision(const v1::RecordDecisionRequest& request) {
  FieldViolations violations;
  CheckId(request.referral_id(), violations);
  CheckToken(request.lease_token(), violations);
  if (request.decision() == v1::DECISION_UNSPECIFIED) {
    violations.Add("decision", "is required");
  } else if (!v1::Decision_IsValid(request.decision())) {
    violations.Add("decision", "is not a known decision");
  }
  CheckText("rationale", request.rationale(), kMaxRationaleBytes,
            /*required=*/true, violations);
  CheckText("feedback", request.feedback(), kMaxFeedbackBytes,
            /*required=*/false, violations);
  return violations.ToStatus();
}

absl::Status CheckAgency(std::string_view agency) {
  FieldViolations violations;
  if (agency.empty()) {
    violations.Add("agency", "is required");
  } else if (!IsValidName(agency)) {
    // Agency ids share the queue-name alphabet.
    violations.Add("agency", "must be 1 to 64 of [a-z0-9-]");
  }
  return violations.ToStatus();
}

}  // namespace referral::server
