// What a ReferralStore reads back: the paged listings of referrals and the
// counts operators watch. Every read sees the state after one group commit.
#ifndef REFERRAL_STORAGE_LISTINGS_H_
#define REFERRAL_STORAGE_LISTINGS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "storage/commands.h"

namespace referral::storage {

// The listings of ReferralStore::List; `key` names the queue or agency.
enum class Listing {
  kQueue,        // a queue's ready referrals, in delivery order
  kOutcomes,     // an agency's unacknowledged outcomes, oldest decision first
  kDeadLetters,  // a queue's dead letters, in the order they were dead-lettered
  // Referrals a queue was notified of (Placement::notified_queues), newest
  // receipt first; each record is the referral as it is now.
  kNotices,
};

// One page of a listing, in the listing's order.
struct ReferralPage {
  std::vector<StoredReferral> referrals;
  std::string next_page_token;  // empty on the last page
};

struct QueueCounts {
  std::string queue;
  int64_t ready = 0;
  int64_t claimed = 0;
  int64_t dead_letters = 0;
  std::optional<absl::Time> oldest_ready_received_at;
  // The due time of that same referral (the oldest ready one by receipt),
  // so operators can see how far the head of the backlog is past due.
  std::optional<absl::Time> oldest_ready_due_at;
  int64_t overdue = 0;          // ready or claimed with due_at <= now
  int64_t due_within_hour = 0;  // ready or claimed, now < due_at <= now+1h

  // Time to decision (received -> decided) of the queue's referrals decided
  // within decision_window up to now. Percentiles are nearest-rank over those
  // decisions and unset when there are none. At most the newest
  // kMaxDecisionsRead decisions of a queue are read.
  static constexpr int64_t kMaxDecisionsRead = 1'000'000;
  absl::Duration decision_window;
  int64_t decisions_in_window = 0;
  std::optional<absl::Duration> time_to_decision_p50;
  std::optional<absl::Duration> time_to_decision_p90;
  std::optional<absl::Duration> time_to_decision_p99;

  // Referrals received in the last 24 hours that this queue was notified of
  // (routing's `notify`) while their work item lives in another queue.
  int64_t notices_last_24h = 0;
};

// Outcomes an agency has not yet acknowledged (the referrer-feedback backlog).
struct OutcomeBacklog {
  std::string agency_id;
  int64_t unacknowledged = 0;
  // Of those, decided at or before now - acknowledge_within.
  int64_t overdue = 0;
  // The decision time of the oldest unacknowledged outcome.
  absl::Time oldest_decided_at;
};

// What the store occupies, for the operators' metrics.
struct DiskUsage {
  // Every file under the data directory (database, logs, key check): what
  // the disk actually holds, encryption overhead included.
  int64_t disk_bytes = 0;
  // RocksDB's estimate of what compaction still has to rewrite, summed over
  // the column families; it grows when writes outpace compaction.
  int64_t pending_compaction_bytes = 0;
};

// What ReferralStore::GetCounts reads. Each part costs reads (a few range
// reads per queue or agency; a walk of the data directory for the disk), so
// ask only for what is shown.
struct CountsRequest {
  absl::Time now = absl::InfinitePast();
  bool queues = false;    // every queue that ever held a referral or notice
  bool outcomes = false;  // every agency with unacknowledged outcomes
  // An outcome is overdue when decided at or before now - acknowledge_within.
  absl::Duration acknowledge_within = absl::ZeroDuration();
  bool disk = false;
};

struct StoreCounts {
  std::vector<QueueCounts> queues;       // by queue name
  std::vector<OutcomeBacklog> outcomes;  // by agency id
  DiskUsage disk;
};

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_LISTINGS_H_
