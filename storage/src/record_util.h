// Small helpers shared by the store's mutations and reads (time conversions
// are base/timestamps.h's): the content fingerprint, lease tokens, history
// entries and the mapping of RocksDB errors to absl::Status.
//
// Error messages built here never carry referral content: only codes,
// states and counts.
#ifndef REFERRAL_STORAGE_SRC_RECORD_UTIL_H_
#define REFERRAL_STORAGE_SRC_RECORD_UTIL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/timestamps.h"
#include "referral/v1/referral.pb.h"
#include "rocksdb/status.h"
#include "storage/v1/stored_referral.pb.h"

namespace referral::storage {

// SHA-256 of the deterministic serialization of the referral: two
// submissions carry the same referral exactly when their fingerprints match.
absl::StatusOr<std::string> Fingerprint(
    const ::referral::v1::Referral& referral);

// 128 random bits from OpenSSL as 32 hex characters.
absl::StatusOr<std::string> NewLeaseToken();
// Compares tokens in time independent of where they first differ.
bool LeaseTokensEqual(std::string_view a, std::string_view b);

// Appends a history entry.
void AddHistory(::referral::storage::v1::StoredReferral& record,
                ::referral::v1::Stage stage, absl::Time at,
                std::string_view actor, std::string_view queue,
                std::string_view detail, int32_t delivery_attempt = 0);

// RocksDB status to absl::Status: OK stays OK; RESOURCE_EXHAUSTED when the
// disk is full, UNAVAILABLE for any other failure. `what` names the action
// ("commit", "read").
absl::Status FromRocksStatus(const rocksdb::Status& status,
                             std::string_view what);

// A warning for operators: a "storage_warning" line of the JSON-lines log
// (base/json_log.h). Never pass personal data.
void LogWarning(std::string_view message);

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_SRC_RECORD_UTIL_H_
