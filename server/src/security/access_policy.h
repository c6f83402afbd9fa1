// AccessPolicy: the one table that decides which roles may call which broker
// method. Every RPC handler asks Authorize() before doing anything else, and
// triage handlers also ask AuthorizeQueue() for the queue they touch. Deny
// by default: a method or role missing from the table is refused.
//
// Row-level rules (an agency sees only referrals it submitted) are not here:
// they need the referral, so the services apply them, using
// Principal::agency_id.
#ifndef REFERRAL_SERVER_ACCESS_POLICY_H_
#define REFERRAL_SERVER_ACCESS_POLICY_H_

#include <array>
#include <string_view>

#include "absl/status/status.h"
#include "security/principals.h"

namespace referral::server {

enum class BrokerMethod {
  // ReferralIntake (agencies)
  kSubmitReferral,
  kSubmitReferrals,
  kGetReferralStatus,
  kListOutcomes,
  kAcknowledgeOutcome,
  // Triage
  kListQueue,
  kClaimReferrals,
  kExtendClaim,
  kReleaseReferral,
  kRecordDecision,
  kWatchQueue,
  kListNotices,
  // Operations
  kGetQueueStats,
  kListDeadLetters,
  kRequeueDeadLetter,
  kExportAudit,
  kVerifyAudit,
  kReloadConfig,
  kCreateBackup,
  kListBackups,
  kVerifyBackup,
};

// Every method, for tests and for building per-method metrics.
inline constexpr std::array<BrokerMethod, 21> kAllBrokerMethods = {
    BrokerMethod::kSubmitReferral,     BrokerMethod::kSubmitReferrals,
    BrokerMethod::kGetReferralStatus,  BrokerMethod::kListOutcomes,
    BrokerMethod::kAcknowledgeOutcome, BrokerMethod::kListQueue,
    BrokerMethod::kClaimReferrals,     BrokerMethod::kExtendClaim,
    BrokerMethod::kReleaseReferral,    BrokerMethod::kRecordDecision,
    BrokerMethod::kWatchQueue,         BrokerMethod::kGetQueueStats,
    BrokerMethod::kListDeadLetters,    BrokerMethod::kRequeueDeadLetter,
    BrokerMethod::kExportAudit,        BrokerMethod::kVerifyAudit,
    BrokerMethod::kReloadConfig,       BrokerMethod::kCreateBackup,
    BrokerMethod::kListNotices,        BrokerMethod::kListBackups,
    BrokerMethod::kVerifyBackup,
};

// The RPC name without its service, e.g. "SubmitReferral".
std::string_view MethodName(BrokerMethod method);

// OK when one of the principal's roles may call `method`, else
// PERMISSION_DENIED "role may not call <Method>". The message names only the
// method, never the caller or any referral, so it is safe to return to the
// client and to log.
absl::Status Authorize(const Principal& principal, BrokerMethod method);

// For triage methods, after Authorize(): OK when the principal may work
// `queue` (Principal::MayUseQueue), else PERMISSION_DENIED "principal may not
// use this queue". Only triage principals have queue restrictions, so for
// other roles this is always OK; Authorize() is what keeps them out.
absl::Status AuthorizeQueue(const Principal& principal, std::string_view queue);

}  // namespace referral::server

#endif  // REFERRAL_SERVER_ACCESS_POLICY_H_
