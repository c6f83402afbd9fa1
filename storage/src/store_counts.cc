// The counts operators watch (ReferralStore::GetCounts): per queue its
// backlog, due times, time to decision and notices; per agency its
// unacknowledged outcomes; and what the store occupies on disk. Each reads
// the state of the last group commit.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "key_codec.h"
#include "record_util.h"
#include "referral_store_impl.h"

namespace referral::storage {
namespace {

// Keys stamped at or before t sort below a bound built for JustAfter(t).
int64_t JustAfter(int64_t t) {
  return t == std::numeric_limits<int64_t>::max() ? t : t + 1;
}

// The index of the nearest-rank percentile `pct` (1..100) among n sorted
// values: rank ceil(pct * n / 100), 1-based.
size_t NearestRankIndex(int pct, size_t n) {
  const size_t rank = (static_cast<size_t>(pct) * n + 99) / 100;
  return rank == 0 ? 0 : rank - 1;
}

}  // namespace

StoreCounts ReferralStoreImpl::GetCounts(const CountsRequest& request) {
  StoreCounts counts;
  if (request.queues) counts.queues = CountQueues(request.now);
  if (request.outcomes) {
    counts.outcomes = CountOutcomes(request.now, request.acknowledge_within);
  }
  if (request.disk) counts.disk = MeasureDisk();
  return counts;
}

DiskUsage ReferralStoreImpl::MeasureDisk() {
  DiskUsage statistics;
  // Files come and go under compaction while this walks: whatever vanished
  // meanwhile is skipped.
  std::error_code error;
  for (std::filesystem::recursive_directory_iterator it(
           options_.path,
           std::filesystem::directory_options::skip_permission_denied, error),
       end;
       !error && it != end; it.increment(error)) {
    std::error_code file_error;
    if (!it->is_regular_file(file_error) || file_error) continue;
    const uintmax_t size = it->file_size(file_error);
    if (!file_error) statistics.disk_bytes += static_cast<int64_t>(size);
  }
  for (rocksdb::ColumnFamilyHandle* family : core_.families) {
    uint64_t pending = 0;
    if (db_->GetIntProperty(
            family, rocksdb::DB::Properties::kEstimatePendingCompactionBytes,
            &pending)) {
      statistics.pending_compaction_bytes += static_cast<int64_t>(pending);
    }
  }
  return statistics;
}

absl::StatusOr<int64_t> ReferralStoreImpl::CountRange(
    Family family, const std::string& from, const std::string& to,
    const rocksdb::Snapshot* snapshot) {
  if (from >= to) return 0;
  rocksdb::Slice upper(to);
  rocksdb::ReadOptions read;
  read.snapshot = snapshot;
  read.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(family)));
  int64_t count = 0;
  for (it->Seek(from); it->Valid(); it->Next()) ++count;
  if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  return count;
}

absl::StatusOr<std::optional<std::string>> ReferralStoreImpl::FirstKeyFrom(
    Family family, const std::string& from, const std::string& upper,
    const rocksdb::Snapshot* snapshot, std::string* value) {
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions read;
  read.snapshot = snapshot;
  read.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(family)));
  it->Seek(from);
  if (it->Valid()) {
    if (value != nullptr) *value = it->value().ToString();
    return std::optional<std::string>(it->key().ToString());
  }
  if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  return std::optional<std::string>();
}

std::vector<QueueCounts> ReferralStoreImpl::CountQueues(absl::Time now) {
  struct Copy {
    std::string name;
    IndexHead ready;
    IndexHead arrival;
    int64_t dead_letters;
    std::map<uint64_t, int64_t> claimed_due;
  };
  std::vector<Copy> copies;
  std::shared_ptr<const rocksdb::Snapshot> snapshot;
  {
    absl::ReaderMutexLock lock(&state_mu_);
    for (const auto& [name, queue] : committed_.queues) {
      copies.push_back(Copy{name, queue.ready, queue.arrival,
                            queue.dead_letters.live(), queue.claimed_due});
    }
    snapshot = committed_.snapshot;
  }
  const int64_t now_us = ToMicros(now);
  const int64_t hour_us = ToMicros(now + absl::Hours(1));
  const int64_t day_ago_us = ToMicros(now - absl::Hours(24));
  // Keys due at or before t are below the bound for t + 1µs.
  auto after = JustAfter;

  std::vector<QueueCounts> result;
  result.reserve(copies.size());
  for (const Copy& copy : copies) {
    QueueCounts counts;
    counts.queue = copy.name;
    counts.ready = copy.ready.live();
    counts.claimed = static_cast<int64_t>(copy.claimed_due.size());
    counts.dead_letters = copy.dead_letters;

    // Oldest ready: the first arrival straggler, else the arrival head.
    std::optional<int64_t> oldest;
    std::optional<uint64_t> oldest_seq;
    auto consider = [&oldest, &oldest_seq](std::string_view key,
                                           std::string_view value) {
      std::optional<int64_t> received = keys::ReadTime(value);
      std::optional<keys::ArrivalKey> k = keys::DecodeArrivalKey(key);
      if (received && k && (!oldest || *received < *oldest)) {
        oldest = *received;
        oldest_seq = k->seq;
      }
    };
    copy.arrival.VisitStragglers(
        nullptr, [&](const std::string& key, const std::string& value) {
          consider(key, value);
          return false;  // the first is the oldest
        });
    if (copy.arrival.live_from_low_water() > 0) {
      std::string value;
      absl::StatusOr<std::optional<std::string>> head =
          FirstKeyFrom(kArrival, copy.arrival.low_water(),
                       keys::NamePrefixEnd(copy.name), snapshot.get(), &value);
      if (!head.ok()) {
        LogWarning("queue counts: arrival index read failed");
      } else if (head->has_value()) {
        consider(**head, value);
      }
    }
    if (oldest) counts.oldest_ready_received_at = FromMicros(*oldest);
    if (oldest_seq) {
      // The arrival index holds receipt times only; the due time is the
      // record's (one point read per queue).
      absl::StatusOr<StoredReferral> record =
          ReadBySeq(snapshot.get(), *oldest_seq);
      if (record.ok()) {
        counts.oldest_ready_due_at = FromMicros(record->due_at_us());
      } else {
        LogWarning("queue counts: oldest ready referral unreadable");
      }
    }

    // Overdue and due within the hour: ready entries by band, read from the
    // low-water mark (never across the claimed head), plus stragglers.
    auto tally = [&](int64_t due_us) {
      if (due_us <= now_us) {
        ++counts.overdue;
      } else if (due_us <= hour_us) {
        ++counts.due_within_hour;
      }
    };
    copy.ready.VisitStragglers(
        nullptr, [&](const std::string& key, const std::string&) {
          std::optional<keys::ReadyKey> k = keys::DecodeReadyKey(key);
          if (k) tally(k->due_at_us);
          return true;
        });
    if (copy.ready.live_from_low_water() > 0) {
      for (uint8_t band : {::referral::v1::PRIORITY_BAND_IMMEDIATE_RISK,
                           ::referral::v1::PRIORITY_BAND_RAISED,
                           ::referral::v1::PRIORITY_BAND_STANDARD}) {
        const std::string& low = copy.ready.low_water();
        const std::string band_start = keys::ReadyKeyBound(
            copy.name, band, std::numeric_limits<int64_t>::min());
        const std::string due_now =
            keys::ReadyKeyBound(copy.name, band, after(now_us));
        const std::string due_hour =
            keys::ReadyKeyBound(copy.name, band, after(hour_us));
        absl::StatusOr<int64_t> overdue = CountRange(
            kReady, std::max(low, band_start), due_now, snapshot.get());
        absl::StatusOr<int64_t> soon = CountRange(
            kReady, std::max(low, due_now), due_hour, snapshot.get());
        if (!overdue.ok() || !soon.ok()) {
          LogWarning("queue counts: ready index read failed");
          continue;
        }
        counts.overdue += *overdue;
        counts.due_within_hour += *soon;
      }
    }
    for (const auto& [seq, due] : copy.claimed_due) tally(due);

    absl::Status decided = ReadDecisionStats(now, snapshot.get(), counts);
    if (!decided.ok()) {
      LogWarning("queue counts: decision stats read failed");
    }
    absl::StatusOr<int64_t> notices = CountRange(
        kNotices, keys::NoticeKeyBound(copy.name, day_ago_us),
        keys::NoticeKeyBound(copy.name, after(now_us)), snapshot.get());
    if (notices.ok()) {
      counts.notices_last_24h = *notices;
    } else {
      LogWarning("queue counts: notice index read failed");
    }
    result.push_back(std::move(counts));
  }
  return result;
}

absl::Status ReferralStoreImpl::ReadDecisionStats(
    absl::Time now, const rocksdb::Snapshot* snapshot, QueueCounts& counts) {
  const absl::Duration window = options_.decision_stats_window;
  counts.decision_window = window;
  const std::string lower =
      keys::DecisionStatKeyBound(counts.queue, ToMicros(now - window));
  const std::string upper =
      keys::DecisionStatKeyBound(counts.queue, JustAfter(ToMicros(now)));
  rocksdb::Slice lower_slice(lower);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions read;
  read.snapshot = snapshot;
  read.iterate_lower_bound = &lower_slice;
  read.iterate_upper_bound = &upper_slice;
  // Statistics reads should not push referral blocks out of the cache.
  read.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(kDecisions)));
  // Newest first, so that a queue over the cap is measured on its most
  // recent decisions.
  std::vector<int64_t> micros;
  for (it->SeekToLast(); it->Valid() && static_cast<int64_t>(micros.size()) <
                                            QueueCounts::kMaxDecisionsRead;
       it->Prev()) {
    std::optional<int64_t> value = keys::ReadTime(it->value().ToStringView());
    if (!value) return absl::DataLossError("decision stats: unreadable entry");
    // A clock that stepped back can make a decision precede its receipt.
    micros.push_back(std::max<int64_t>(*value, 0));
  }
  if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  counts.decisions_in_window = static_cast<int64_t>(micros.size());
  if (micros.empty()) return absl::OkStatus();
  // Each selection only needs the part above the previous one.
  auto select = [&micros](int pct, size_t from) {
    const size_t index = NearestRankIndex(pct, micros.size());
    std::nth_element(micros.begin() + static_cast<ptrdiff_t>(from),
                     micros.begin() + static_cast<ptrdiff_t>(index),
                     micros.end());
    return index;
  };
  const size_t p50 = select(50, 0);
  counts.time_to_decision_p50 = absl::Microseconds(micros[p50]);
  const size_t p90 = select(90, p50);
  counts.time_to_decision_p90 = absl::Microseconds(micros[p90]);
  const size_t p99 = select(99, p90);
  counts.time_to_decision_p99 = absl::Microseconds(micros[p99]);
  return absl::OkStatus();
}

std::vector<OutcomeBacklog> ReferralStoreImpl::CountOutcomes(
    absl::Time now, absl::Duration acknowledge_within) {
  std::vector<std::pair<std::string, IndexHead>> heads;
  std::shared_ptr<const rocksdb::Snapshot> snapshot;
  {
    absl::ReaderMutexLock lock(&state_mu_);
    for (const auto& [agency, head] : committed_.outcomes) {
      if (head.live() > 0) heads.emplace_back(agency, head);
    }
    snapshot = committed_.snapshot;
  }
  // Outcomes decided at or before the cutoff are overdue.
  const int64_t cutoff_us = ToMicros(now - acknowledge_within);

  std::vector<OutcomeBacklog> result;
  result.reserve(heads.size());
  for (const auto& [agency, head] : heads) {
    OutcomeBacklog backlog;
    backlog.agency_id = agency;
    backlog.unacknowledged = head.live();
    // Overdue entries sort below the first key decided after the cutoff.
    const std::string overdue_end =
        keys::EncodeOutcomeKey({agency, JustAfter(cutoff_us), 0});
    std::optional<int64_t> oldest;
    head.VisitStragglers(
        nullptr, [&](const std::string& key, const std::string&) {
          std::optional<keys::OutcomeKey> k = keys::DecodeOutcomeKey(key);
          if (!k) return true;
          if (!oldest) oldest = k->decided_at_us;  // stragglers sort first
          if (k->decided_at_us <= cutoff_us) ++backlog.overdue;
          return true;
        });
    if (head.live_from_low_water() > 0) {
      // The oldest: the first straggler, else the first key from the mark.
      if (!oldest) {
        absl::StatusOr<std::optional<std::string>> first =
            FirstKeyFrom(kOutcomes, head.low_water(),
                         keys::NamePrefixEnd(agency), snapshot.get());
        if (!first.ok()) {
          LogWarning("outcome backlog: outcome index read failed");
        } else if (first->has_value()) {
          std::optional<keys::OutcomeKey> k = keys::DecodeOutcomeKey(**first);
          if (k) oldest = k->decided_at_us;
        }
      }
      absl::StatusOr<int64_t> overdue =
          CountRange(kOutcomes, head.low_water(), overdue_end, snapshot.get());
      if (overdue.ok()) {
        backlog.overdue += *overdue;
      } else {
        LogWarning("outcome backlog: outcome index read failed");
      }
    }
    if (oldest) backlog.oldest_decided_at = FromMicros(*oldest);
    result.push_back(std::move(backlog));
  }
  return result;
}

}  // namespace referral::storage
