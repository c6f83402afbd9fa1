// The audit trail's hash chain and key layout, as pure functions.
//
// audit: seq(8, big-endian) -> AuditRecord. Sequence numbers start at 1 and
// have no gaps. Each record's hash is SHA-256(previous_hash || the
// deterministic protobuf serialization of the record with `hash` cleared),
// so editing a record changes its hash and removing one leaves a gap or a
// previous_hash that no longer matches.
//
// What the chain cannot show: a truncated tail (the newest records removed
// leave a shorter chain that is still whole), nor a chain rewritten from the
// point of an edit onwards by someone who recomputes every later hash (there
// is no secret in the hash). Detecting those needs the head (seq and hash)
// copied elsewhere from time to time, e.g. into the ops logs.
#ifndef REFERRAL_STORAGE_SRC_AUDIT_CHAIN_H_
#define REFERRAL_STORAGE_SRC_AUDIT_CHAIN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "storage/v1/stored_referral.pb.h"

namespace referral::storage::audit {

std::string AuditKey(uint64_t seq);
std::optional<uint64_t> DecodeAuditKey(std::string_view key);

// The hash `record` must carry: over record.previous_hash() and the record
// with its hash cleared. INTERNAL if OpenSSL fails.
absl::StatusOr<std::string> ComputeHash(
    const ::referral::storage::v1::AuditRecord& record);

// The last record of the chain as the commit thread knows it.
struct ChainHead {
  uint64_t next_seq = 1;
  std::string last_hash;  // empty before the first record
};

}  // namespace referral::storage::audit

#endif  // REFERRAL_STORAGE_SRC_AUDIT_CHAIN_H_
