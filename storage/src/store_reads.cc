// The store's readers: a referral by id and the paged listings, each read
// against the snapshot and in-memory state of the last group commit.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/status_macros.h"
#include "key_codec.h"
#include "record_util.h"
#include "referral_store_impl.h"

namespace referral::storage {
namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;

int ClampPageSize(int page_size) {
  if (page_size <= 0) return kDefaultPageSize;
  return std::min(page_size, kMaxPageSize);
}

// Parses a page token: the hex of the last key of the previous page, which
// must be a key of this listing.
absl::StatusOr<std::optional<std::string>> ParsePageToken(
    std::string_view token, const std::string& prefix,
    absl::FunctionRef<std::optional<uint64_t>(std::string_view)> seq_of) {
  if (token.empty()) return std::optional<std::string>();
  std::optional<std::string> key = keys::FromHex(token);
  if (!key || key->compare(0, prefix.size(), prefix) != 0 ||
      !seq_of(*key).has_value()) {
    return absl::InvalidArgumentError(
        "page_token: not a page token of this listing");
  }
  return key;
}

// The referral an index key names, when the key's owner (queue or agency)
// is `owner`.
template <typename Key>
std::optional<uint64_t> SeqIfOwned(const std::optional<Key>& key,
                                   std::string Key::*owner_of,
                                   std::string_view owner) {
  if (!key || (*key).*owner_of != owner) return std::nullopt;
  return key->seq;
}

// The referral an index key of `listing` names, when the key belongs to the
// listing of `owner`.
std::optional<uint64_t> SeqOfListingKey(Listing listing, std::string_view owner,
                                        std::string_view key) {
  switch (listing) {
    case Listing::kQueue:
      return SeqIfOwned(keys::DecodeReadyKey(key), &keys::ReadyKey::queue,
                        owner);
    case Listing::kOutcomes:
      return SeqIfOwned(keys::DecodeOutcomeKey(key),
                        &keys::OutcomeKey::agency_id, owner);
    case Listing::kDeadLetters:
      return SeqIfOwned(keys::DecodeDeadLetterKey(key),
                        &keys::DeadLetterKey::queue, owner);
    case Listing::kNotices:
      return SeqIfOwned(keys::DecodeNoticeKey(key), &keys::NoticeKey::queue,
                        owner);
  }
  return std::nullopt;
}

}  // namespace

std::shared_ptr<const rocksdb::Snapshot> ReferralStoreImpl::CurrentSnapshot() {
  absl::ReaderMutexLock lock(&state_mu_);
  return committed_.snapshot;
}

absl::StatusOr<StoredReferral> ReferralStoreImpl::ReadBySeq(
    const rocksdb::Snapshot* snapshot, uint64_t seq) {
  rocksdb::ReadOptions read;
  read.snapshot = snapshot;
  std::string value;
  rocksdb::Status s =
      db_->Get(read, cf(kReferrals), keys::ReferralKey(seq), &value);
  if (s.IsNotFound()) return absl::NotFoundError("referral not found");
  if (!s.ok()) return FromRocksStatus(s, "read");
  StoredReferral record;
  if (!record.ParseFromString(value)) {
    return absl::DataLossError(
        absl::StrCat("stored referral ", seq, " is unreadable"));
  }
  return record;
}

absl::StatusOr<StoredReferral> ReferralStoreImpl::GetReferral(
    std::string_view referral_id) {
  std::optional<keys::ParsedReferralId> parsed =
      keys::ParseReferralId(referral_id);
  if (!parsed) {
    return absl::InvalidArgumentError("referral_id: not a referral reference");
  }
  std::shared_ptr<const rocksdb::Snapshot> snapshot = CurrentSnapshot();
  ASSIGN_OR_RETURN(StoredReferral record,
                   ReadBySeq(snapshot.get(), parsed->seq));
  // "REF-2025-000042" must not find REF-2026-000042.
  if (record.referral_id() != referral_id) {
    return absl::NotFoundError("referral not found");
  }
  return record;
}

std::optional<int64_t> ReferralStoreImpl::ReadyCount(std::string_view queue) {
  absl::ReaderMutexLock lock(&state_mu_);
  auto it = committed_.queues.find(queue);
  if (it == committed_.queues.end()) return std::nullopt;
  return it->second.ready.live();
}

absl::StatusOr<ReferralPage> ReferralStoreImpl::List(
    Listing listing, std::string_view key, int page_size,
    std::string_view page_token) {
  if (!keys::IsValidName(key)) {
    return absl::InvalidArgumentError(listing == Listing::kOutcomes
                                          ? "agency_id: not an agency id"
                                          : "queue: not a queue name");
  }
  page_size = ClampPageSize(page_size);
  auto seq_of = [listing, key](std::string_view k) {
    return SeqOfListingKey(listing, key, k);
  };
  ASSIGN_OR_RETURN(std::optional<std::string> after,
                   ParsePageToken(page_token, keys::NamePrefix(key), seq_of));
  if (listing == Listing::kNotices) {
    return ListNotices(key, page_size, std::move(after), seq_of);
  }
  std::optional<IndexHead> head;
  std::shared_ptr<const rocksdb::Snapshot> snapshot;
  Family family = kReady;
  {
    absl::ReaderMutexLock lock(&state_mu_);
    if (listing == Listing::kOutcomes) {
      family = kOutcomes;
      auto it = committed_.outcomes.find(key);
      if (it != committed_.outcomes.end()) head = it->second;
    } else {
      auto it = committed_.queues.find(key);
      if (it != committed_.queues.end()) {
        const bool ready = listing == Listing::kQueue;
        family = ready ? kReady : kDeadLetters;
        head = ready ? it->second.ready : it->second.dead_letters;
      }
    }
    snapshot = committed_.snapshot;
  }
  return ListRange(family, keys::NamePrefix(key), head ? &*head : nullptr,
                   snapshot, page_size, std::move(after), seq_of);
}

absl::StatusOr<ReferralPage> ReferralStoreImpl::ListRange(
    Family family, const std::string& prefix, const IndexHead* head,
    const std::shared_ptr<const rocksdb::Snapshot>& snapshot, int page_size,
    std::optional<std::string> after,
    absl::FunctionRef<std::optional<uint64_t>(std::string_view)> seq_of) {
  if (head == nullptr || head->live() == 0) return ReferralPage();
  // One more key than the page holds tells whether another page follows.
  const size_t wanted = static_cast<size_t>(page_size) + 1;
  std::vector<std::string> found;
  head->VisitStragglers(after ? &*after : nullptr,
                        [&](const std::string& key, const std::string&) {
                          if (found.size() == wanted) return false;
                          found.push_back(key);
                          return true;
                        });
  if (found.size() < wanted && head->live_from_low_water() > 0) {
    std::string from = head->low_water();
    if (after && *after >= from) from = keys::Successor(*after);
    const std::string end = keys::NamePrefixEnd(
        std::string_view(prefix).substr(0, prefix.size() - 1));
    rocksdb::Slice upper(end);
    rocksdb::ReadOptions read;
    read.snapshot = snapshot.get();
    read.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(family)));
    for (it->Seek(from); it->Valid() && found.size() < wanted; it->Next()) {
      found.push_back(it->key().ToString());
    }
    if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  }
  return PageOf(std::move(found), page_size, snapshot.get(), seq_of);
}

absl::StatusOr<ReferralPage> ReferralStoreImpl::ListNotices(
    std::string_view queue, int page_size, std::optional<std::string> after,
    absl::FunctionRef<std::optional<uint64_t>(std::string_view)> seq_of) {
  std::shared_ptr<const rocksdb::Snapshot> snapshot = CurrentSnapshot();
  // Newest first: read backwards from the end of the queue's range, or from
  // just below the last key of the previous page. Notices are never
  // deleted, so the read steps over no tombstones.
  const std::string prefix = keys::NamePrefix(queue);
  const std::string upper = after ? *after : keys::NamePrefixEnd(queue);
  rocksdb::Slice lower_slice(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions read;
  read.snapshot = snapshot.get();
  read.iterate_lower_bound = &lower_slice;
  read.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(kNotices)));
  const size_t wanted = static_cast<size_t>(page_size) + 1;
  std::vector<std::string> found;
  for (it->SeekToLast(); it->Valid() && found.size() < wanted; it->Prev()) {
    found.push_back(it->key().ToString());
  }
  if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  return PageOf(std::move(found), page_size, snapshot.get(), seq_of);
}

absl::StatusOr<ReferralPage> ReferralStoreImpl::PageOf(
    std::vector<std::string> found, int page_size,
    const rocksdb::Snapshot* snapshot,
    absl::FunctionRef<std::optional<uint64_t>(std::string_view)> seq_of) {
  ReferralPage page;
  const bool more = found.size() > static_cast<size_t>(page_size);
  if (more) found.pop_back();
  for (const std::string& key : found) {
    std::optional<uint64_t> seq = seq_of(key);
    if (!seq) return absl::DataLossError("index: unreadable key");
    ASSIGN_OR_RETURN(StoredReferral record, ReadBySeq(snapshot, *seq));
    page.referrals.push_back(std::move(record));
  }
  if (more) page.next_page_token = keys::ToHex(found.back());
  return page;
}

}  // namespace referral::storage
