#include "security/access_policy.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"

namespace referral::server {
namespace {

using RoleMask = uint8_t;

constexpr RoleMask Bit(Role role) {
  return static_cast<RoleMask>(1u << static_cast<unsigned>(role));
}

constexpr RoleMask kAgency = Bit(Role::kAgency);
constexpr RoleMask kTriage = Bit(Role::kTriage);
constexpr RoleMask kOps = Bit(Role::kOps);
constexpr RoleMask kAdmin = Bit(Role::kAdmin);

struct Rule {
  BrokerMethod method;
  std::string_view name;
  RoleMask allowed;
};

// The policy. Each row lists every role that may call the method; admin is
// written out wherever it applies rather than implied, so the row is the
// whole answer. Ops-visible methods return ids and counts only: nothing
// here grants ops or admin a way to read a referral.
constexpr Rule kPolicy[] = {
    {BrokerMethod::kSubmitReferral, "SubmitReferral", kAgency},
    {BrokerMethod::kSubmitReferrals, "SubmitReferrals", kAgency},
    {BrokerMethod::kGetReferralStatus, "GetReferralStatus", kAgency},
    {BrokerMethod::kListOutcomes, "ListOutcomes", kAgency},
    {BrokerMethod::kAcknowledgeOutcome, "AcknowledgeOutcome", kAgency},

    {BrokerMethod::kListQueue, "ListQueue", kTriage},
    {BrokerMethod::kClaimReferrals, "ClaimReferrals", kTriage},
    {BrokerMethod::kExtendClaim, "ExtendClaim", kTriage},
    {BrokerMethod::kReleaseReferral, "ReleaseReferral", kTriage},
    {BrokerMethod::kRecordDecision, "RecordDecision", kTriage},
    {BrokerMethod::kWatchQueue, "WatchQueue", kTriage},
    {BrokerMethod::kListNotices, "ListNotices", kTriage},

    {BrokerMethod::kGetQueueStats, "GetQueueStats", kOps | kAdmin},
    {BrokerMethod::kListDeadLetters, "ListDeadLetters", kOps | kAdmin},

    {BrokerMethod::kRequeueDeadLetter, "RequeueDeadLetter", kAdmin},
    {BrokerMethod::kExportAudit, "ExportAudit", kAdmin},
    {BrokerMethod::kVerifyAudit, "VerifyAudit", kAdmin},
    {BrokerMethod::kReloadConfig, "ReloadConfig", kAdmin},
    {BrokerMethod::kCreateBackup, "CreateBackup", kAdmin},
    {BrokerMethod::kListBackups, "ListBackups", kAdmin},
    {BrokerMethod::kVerifyBackup, "VerifyBackup", kAdmin},
};

const Rule* FindRule(BrokerMethod method) {
  for (const Rule& rule : kPolicy) {
    if (rule.method == method) return &rule;
  }
  return nullptr;
}

}  // namespace

std::string_view MethodName(BrokerMethod method) {
  const Rule* rule = FindRule(method);
  return rule == nullptr ? "UnknownMethod" : rule->name;
}

absl::Status Authorize(const Principal& principal, BrokerMethod method) {
  const Rule* rule = FindRule(method);
  // Deny by default: a method added to the enum but not to the table is
  // refused until someone decides who may call it.
  RoleMask held = 0;
  for (Role role : principal.roles) held |= Bit(role);
  if (rule != nullptr && (rule->allowed & held) != 0) {
    return absl::OkStatus();
  }
  const std::string_view name = MethodName(method);
  return absl::PermissionDeniedError(absl::StrCat(
      "role may not call ", absl::string_view(name.data(), name.size())));
}

absl::Status AuthorizeQueue(const Principal& principal,
                            std::string_view queue) {
  if (principal.MayUseQueue(queue)) return absl::OkStatus();
  // The queue name comes from the request, so it is not echoed: a client
  // could put anything there, and this message may reach the logs.
  return absl::PermissionDeniedError("principal may not use this queue");
}

}  // namespace referral::server
