// Reading the store's tamper-evident audit trail: exporting it and checking
// its hash chain. Records are appended by the store itself: one per
// referral each committed change acts on (claims and lease expiry: one per
// referral; a refused change: one with its status code, its own changes
// rolled back), in the same synced write as the change, and one per
// RecordAccessCommand. Actions: "submit", "claim", "extend", "release",
// "decide", "acknowledge_outcome", "requeue", "lease_expired", and the
// recorded reads'. An empty claim and a reaper pass that expired nothing
// append nothing. Nothing changes or removes a record.
#ifndef REFERRAL_STORAGE_AUDIT_TRAIL_H_
#define REFERRAL_STORAGE_AUDIT_TRAIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/referral_store.h"
#include "storage/v1/stored_referral.pb.h"

namespace referral::storage {

using AuditRecord = ::referral::storage::v1::AuditRecord;

// The result of re-walking the audit chain from its first record.
struct AuditVerification {
  uint64_t records_checked = 0;
  bool intact = true;
  // When !intact: the first sequence number whose record is missing, edited
  // or out of chain.
  uint64_t first_bad_seq = 0;
  std::string problem;  // what was wrong; never record content
};

// Records with from <= at <= to in sequence order, at most `limit`
// (INVALID_ARGUMENT unless positive), as of the last group commit. The
// whole trail is read (records are in sequence, not time, order): a rare
// admin read. `store` must come from ReferralStore::Open; safe on any
// thread.
absl::StatusOr<std::vector<AuditRecord>> ExportAudit(ReferralStore& store,
                                                     absl::Time from,
                                                     absl::Time to, int limit);

// Recomputes the chain from the first record (see AuditVerification).
absl::StatusOr<AuditVerification> VerifyAudit(ReferralStore& store);

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_AUDIT_TRAIL_H_
