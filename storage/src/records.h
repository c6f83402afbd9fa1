// Reading and writing referral records and their index entries within a
// group commit, for the mutations (run on the commit thread).
//
// Index entries are derived from the record (queue, band, due time, seq,
// enqueue generation, lease expiry...), so a record and its index entries
// cannot disagree; each is Put once and SingleDeleted once. A referral that
// re-enters a queue gets a new enqueue generation, hence new keys, but keeps
// its band, due time and seq: its place in the queue.
#ifndef REFERRAL_STORAGE_SRC_RECORDS_H_
#define REFERRAL_STORAGE_SRC_RECORDS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "group.h"
#include "rocksdb/status.h"
#include "storage/store_options.h"
#include "storage/v1/stored_referral.pb.h"

namespace referral::storage {

using ::referral::storage::v1::StoredReferral;

// The actor of the broker's own changes (routing, lease expiry).
inline constexpr std::string_view kBrokerActor = "broker";

// A batch operation's status.
absl::Status FromBatch(const rocksdb::Status& s);

// a + b, held at the int64 range.
int64_t SaturatingAdd(int64_t a, int64_t b);

// "REFERRAL_STATE_QUEUED", ...: for error messages.
std::string StateName(::referral::v1::ReferralState state);

// The index keys of a record.
std::string ReadyKeyOf(const StoredReferral& r);
std::string LeaseKeyOf(const StoredReferral& r);
std::string DeadLetterKeyOf(const StoredReferral& r);
std::string OutcomeKeyOf(const StoredReferral& r);
std::string DecisionStatKeyOf(const StoredReferral& r);

// The record as this group sees it. NOT_FOUND when absent; LoadById also
// INVALID_ARGUMENT for a malformed id.
absl::StatusOr<StoredReferral> LoadBySeq(Group& group, uint64_t seq);
absl::StatusOr<StoredReferral> LoadById(Group& group,
                                        std::string_view referral_id);
absl::Status PutRecord(Group& group, const StoredReferral& record);

// FAILED_PRECONDITION unless the record is claimed under `token`.
absl::Status CheckLease(const StoredReferral& record, std::string_view token);

// The ready and arrival entries of a queued record.
absl::Status AddToQueue(Group& group, QueueState& queue,
                        const StoredReferral& record);
absl::Status RemoveFromQueue(Group& group, QueueState& queue,
                             const StoredReferral& record);
// The lease entry of a claimed record, and its due time among the queue's
// claimed referrals.
absl::Status AddLease(Group& group, QueueState& queue,
                      const StoredReferral& record);
absl::Status RemoveLease(Group& group, QueueState& queue,
                         const StoredReferral& record);

// After a release or lease expiry: back to the queue with a new generation,
// or to the dead letters once failed_deliveries reaches max_deliveries.
// Clears the lease. Reports the change (`kind`), then any dead-lettering.
absl::Status ReturnOrDeadLetter(Group& group, QueueState& queue,
                                StoredReferral& record, absl::Time now,
                                CommittedChange::Kind kind);

// Reports a change to `record` in `queue` at `at`, with what the record says
// of it: band, due time and the referring agency's type; for kDecided the
// decision, for kClaimed which delivery this is (the record's delivery
// count, already incremented).
CommittedChange& ReportChange(Group& group, CommittedChange::Kind kind,
                              const StoredReferral& record,
                              std::string_view queue, absl::Time at,
                              std::string_view worker = "");

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_SRC_RECORDS_H_
