// ReferralStore::Open, the group-commit machinery and the reads. The
// mutations themselves are in referral_mutations.cc.
//
// RocksDB choices:
//  - Every write is one WriteBatch with WriteOptions::sync, so an OK reply
//    means the whole change is in the synced write-ahead log.
//  - Index column families (ready, arrival, leases, dead letters, outcomes,
//    decision stats) only ever Put a key once and SingleDelete it once, and use
//    NewCompactOnDeletionCollectorFactory: SST files dense with tombstones
//    are compacted early, where a SingleDelete and its Put cancel out. The
//    design does not rely on that for bounded claims (IndexHead does); it
//    just keeps the files small.
//  - Referrals get a bloom filter (point lookups by seq); one LRU block
//    cache is shared by all families.
//  - Decision stats (queue, decided_at, seq -> time to decision) are read
//    only from now - decision_stats_window on, and each Decide prunes a few
//    entries older than that from a per-queue mark, so the figures cost one
//    range read of one window and no read steps over the pruned tombstones.
//  - Notices (queue, received_at, seq) are written once per notified queue at
//    submission and never deleted; they are listed newest first by a reverse
//    range read, and counted for the last 24 hours by a range read.
//  - The audit trail (audit_chain.h) is its own family, appended to in the
//    same batch as the changes it records; the commit thread holds the chain
//    head, recovered at Open from the last key.
//  - With StoreOptions::encryption_key_file every file goes through the
//    encrypted Env (encrypted_env.h), which the store owns.
//  - Write health: a failed write-ahead-log write puts RocksDB into a
//    background-error state (a hard error for a full disk; a fatal one for
//    other I/O errors, which only reopening clears). RocksDB only applies a
//    batch to its memtables after its log write succeeded, so a failed
//    commit leaves nothing readable behind. The store remembers the
//    failure, refuses commits meanwhile, and recovers with DB::Resume plus
//    a synced probe write (TryRestoreWrites). RocksDB's own automatic
//    recovery is turned off (BackgroundErrorListener,
//    max_bgerror_resume_count = 0) so that resuming happens only where it
//    is safe in 7.8, and its info log is the store's own (info_log.h),
//    which survives a full disk.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "audit_chain.h"
#include "base/status_macros.h"
#include "encrypted_env.h"
#include "info_log.h"
#include "key_codec.h"
#include "record_util.h"
#include "referral_store_impl.h"
#include "referral_store_internal.h"
#include "rocksdb/cache.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/perf_context.h"
#include "rocksdb/perf_level.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/backup_engine.h"
#include "rocksdb/utilities/table_properties_collectors.h"
#include "rocksdb/write_batch.h"
#include "thread_name.h"

namespace referral::storage {
namespace {

using ::referral::storage::v1::StoredReferral;
using ::referral::v1::QueueEvent;

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;

const char* const kFamilyNames[ReferralStoreImpl::kFamilyCount] = {
    "default",  // rocksdb::kDefaultColumnFamilyName
    "referrals",    "ready",       "arrival",  "leases",
    "dead_letters", "idempotency", "outcomes", "children",
    "decisions",    "notices",     "audit",
};

bool IsIndexFamily(int family) {
  switch (family) {
    case ReferralStoreImpl::kReady:
    case ReferralStoreImpl::kArrival:
    case ReferralStoreImpl::kLeases:
    case ReferralStoreImpl::kDeadLetters:
    case ReferralStoreImpl::kOutcomes:
    case ReferralStoreImpl::kDecisions:
      return true;
    default:
      return false;
  }
}

// The children index is only ever read within one child (a submission looks
// up each of its children's match keys). With the child's part of the key as
// a prefix Bloom filter, in the table files and the memtables, the look-up
// for a child with no history (most children) skips nearly every file rather
// than seeking in each, so it costs the same however many children the index
// holds.
class ChildLinkPrefix final : public rocksdb::SliceTransform {
 public:
  // Stored in every table file's properties: change it with the key format.
  const char* Name() const override { return "referral.ChildLinkPrefix.v1"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    // RocksDB transforms only keys InDomain accepted.
    const std::string_view view(key.data(), key.size());
    return rocksdb::Slice(
        key.data(), keys::ChildLinkPrefixLength(view).value_or(key.size()));
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return keys::ChildLinkPrefixLength(std::string_view(key.data(), key.size()))
        .has_value();
  }
};

rocksdb::ColumnFamilyOptions FamilyOptions(
    int family, const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions options;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  if (family == ReferralStoreImpl::kReferrals ||
      family == ReferralStoreImpl::kIdempotency) {
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  }
  if (family == ReferralStoreImpl::kChildren) {
    options.prefix_extractor = std::make_shared<ChildLinkPrefix>();
    options.memtable_prefix_bloom_size_ratio = 0.05;
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    table.whole_key_filtering = false;  // never looked up by whole key
  }
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Records are the bulk of the data; index entries are ~30 bytes each.
  options.write_buffer_size =
      family == ReferralStoreImpl::kReferrals ? 32 << 20 : 8 << 20;
  if (IsIndexFamily(family)) {
    // Mark a file for compaction when any 128 consecutive entries hold 64
    // or more tombstones, or half the file is tombstones.
    options.table_properties_collector_factories.push_back(
        rocksdb::NewCompactOnDeletionCollectorFactory(128, 64, 0.5));
  }
  return options;
}

rocksdb::DBOptions DatabaseOptions() {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.max_background_jobs = 2;
  options.keep_log_file_num = 3;
  options.bytes_per_sync = 1 << 20;
  // Bound the write-ahead log so that rarely written families get flushed.
  options.max_total_wal_size = 256 << 20;
  // Every acknowledged write was synced into the log, so replay must not
  // stop early: the default (kPointInTimeRecovery) stops silently at the
  // first damaged record and drops every acknowledged write after it. This
  // mode still accepts an incomplete last record (a crash in the middle of
  // an unacknowledged write) and refuses to open on damage anywhere else.
  options.wal_recovery_mode =
      rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  return options;
}

// A store that RocksDB found damaged (a checksum mismatch in a table file,
// the manifest or the write-ahead log). Its message names the file where
// RocksDB does, and says what to do: serving from it could hand out wrong
// data or silently miss acknowledged referrals.
absl::Status DamagedStoreError(const rocksdb::Status& status) {
  return absl::DataLossError(
      absl::StrCat("the data directory is damaged (", status.ToString(),
                   "); refusing to serve from it: restore it from a backup"));
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

int ClampPageSize(int page_size) {
  if (page_size <= 0) return kDefaultPageSize;
  return std::min(page_size, kMaxPageSize);
}

std::string ResultName(const absl::Status& status) {
  return status.ok() ? "OK" : absl::StatusCodeToString(status.code());
}

// Who a command is audited as: its AuditContext, else its actor.
struct AuditWho {
  std::string principal;
  std::string on_behalf_of;
};
AuditWho Who(const AuditContext& audit, const std::string& actor) {
  return {audit.principal.empty() ? actor : audit.principal,
          audit.on_behalf_of};
}

// A referral id as the caller gave it, when it is one: a malformed "id" is
// arbitrary caller text and does not belong in the trail.
std::string AuditableId(std::string_view id) {
  return keys::ParseReferralId(id).has_value() ? std::string(id) : "";
}

template <typename T>
class TypedOp final : public Op {
 public:
  using ApplyFn = absl::AnyInvocable<absl::StatusOr<T>(Group&)>;
  using AuditFn =
      absl::AnyInvocable<std::vector<AuditEntry>(const absl::StatusOr<T>&)>;
  TypedOp(ApplyFn apply, Done<T> done, AuditFn audit)
      : apply_(std::move(apply)),
        done_(std::move(done)),
        audit_(std::move(audit)) {}

  absl::Status Apply(Group& group) override {
    absl::StatusOr<T> result = apply_(group);
    if (!result.ok()) return result.status();
    result_ = std::move(result);
    return absl::OkStatus();
  }
  std::vector<AuditEntry> AuditEntries(const absl::Status& status) override {
    if (status.ok() && result_.has_value()) return audit_(*result_);
    return audit_(status.ok() ? absl::InternalError("no result") : status);
  }
  void Complete(absl::Status status) override {
    if (status.ok() && result_.has_value()) {
      std::move(done_)(*std::move(result_));
    } else {
      std::move(done_)(status.ok() ? absl::InternalError("no result") : status);
    }
  }

 private:
  ApplyFn apply_;
  Done<T> done_;
  AuditFn audit_;
  std::optional<absl::StatusOr<T>> result_;
};

template <typename T>
std::unique_ptr<Op> MakeOp(typename TypedOp<T>::ApplyFn apply, Done<T> done,
                           typename TypedOp<T>::AuditFn audit) {
  return std::make_unique<TypedOp<T>>(std::move(apply), std::move(done),
                                      std::move(audit));
}

// The audit of a mutation of one named referral: one record, whatever the
// outcome.
template <typename T>
typename TypedOp<T>::AuditFn AuditOne(AuditWho who, std::string action,
                                      std::string referral_id) {
  return [who = std::move(who), action = std::move(action),
          referral_id = std::move(referral_id)](const absl::StatusOr<T>& r) {
    return std::vector<AuditEntry>{{who.principal, who.on_behalf_of, action,
                                    referral_id, ResultName(r.status())}};
  };
}

// The first key in [from, upper) of an iterator, or nullopt.
absl::StatusOr<std::optional<std::string>> FirstKey(rocksdb::Iterator& it,
                                                    const std::string& from,
                                                    const std::string* upper) {
  it.Seek(from);
  if (it.Valid() && (upper == nullptr || it.key().compare(*upper) < 0)) {
    return std::optional<std::string>(it.key().ToString());
  }
  if (!it.status().ok()) return FromRocksStatus(it.status(), "index read");
  return std::optional<std::string>();
}

}  // namespace

// --- Group. ----------------------------------------------------------------

Group::Group(const CommittedState& committed, rocksdb::DB* db)
    : committed_(committed),
      db_(db),
      batch_(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true),
      next_seq_(committed.next_seq),
      audit_head_(committed.audit_head) {}

QueueState QueueState::OverlayOn(const QueueState& committed) {
  QueueState overlay;
  overlay.ready = IndexHead::OverlayOn(committed.ready);
  overlay.arrival = IndexHead::OverlayOn(committed.arrival);
  overlay.dead_letters = IndexHead::OverlayOn(committed.dead_letters);
  overlay.claimed_due = committed.claimed_due;
  overlay.persisted = committed.persisted;
  overlay.decisions_pruned_to = committed.decisions_pruned_to;
  return overlay;
}

void QueueState::Absorb(QueueState&& overlay) {
  ready.Absorb(std::move(overlay.ready));
  arrival.Absorb(std::move(overlay.arrival));
  dead_letters.Absorb(std::move(overlay.dead_letters));
  claimed_due = std::move(overlay.claimed_due);
  persisted = overlay.persisted;
  decisions_pruned_to = std::move(overlay.decisions_pruned_to);
}

QueueState* Group::Queue(const std::string& name, bool create) {
  auto it = queues_.find(name);
  if (it != queues_.end()) return &it->second;
  auto committed = committed_.queues.find(name);
  if (committed != committed_.queues.end()) {
    return &queues_.emplace(name, QueueState::OverlayOn(committed->second))
                .first->second;
  }
  if (!create) return nullptr;
  const std::string prefix = keys::NamePrefix(name);
  QueueState fresh;
  fresh.ready = IndexHead(prefix, 0);
  fresh.arrival = IndexHead(prefix, 0);
  fresh.dead_letters = IndexHead(prefix, 0);
  QueueState* created = &queues_.emplace(name, std::move(fresh)).first->second;
  // If the mutation that saw this queue first fails, forget the queue.
  undo_.Record([this, name] { queues_.erase(name); });
  return created;
}

IndexHead& Group::Outcomes(const std::string& agency_id) {
  auto it = outcomes_.find(agency_id);
  if (it != outcomes_.end()) return it->second;
  auto committed = committed_.outcomes.find(agency_id);
  IndexHead head = committed != committed_.outcomes.end()
                       ? IndexHead::OverlayOn(committed->second)
                       : IndexHead(keys::NamePrefix(agency_id), 0);
  return outcomes_.emplace(agency_id, std::move(head)).first->second;
}

IndexHead& Group::Leases() {
  if (!leases_.has_value()) leases_ = IndexHead::OverlayOn(committed_.leases);
  return *leases_;
}

absl::StatusOr<std::optional<std::string>> Group::Get(
    rocksdb::ColumnFamilyHandle* cf, const std::string& key) {
  std::string value;
  rocksdb::Status s =
      batch_.GetFromBatchAndDB(db_, rocksdb::ReadOptions(), cf, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocksStatus(s, "read");
  return std::optional<std::string>(std::move(value));
}

namespace {

// A DB iterator reads its upper bound through a pointer held in the
// ReadOptions it was made with; this wrapper keeps that Slice alive.
class BoundedIterator final : public rocksdb::Iterator {
 public:
  BoundedIterator(rocksdb::Iterator* inner,
                  std::unique_ptr<rocksdb::Slice> bound)
      : inner_(inner), bound_(std::move(bound)) {}
  bool Valid() const override { return inner_->Valid(); }
  void SeekToFirst() override { inner_->SeekToFirst(); }
  void SeekToLast() override { inner_->SeekToLast(); }
  void Seek(const rocksdb::Slice& target) override { inner_->Seek(target); }
  void SeekForPrev(const rocksdb::Slice& target) override {
    inner_->SeekForPrev(target);
  }
  void Next() override { inner_->Next(); }
  void Prev() override { inner_->Prev(); }
  rocksdb::Slice key() const override { return inner_->key(); }
  rocksdb::Slice value() const override { return inner_->value(); }
  rocksdb::Status status() const override { return inner_->status(); }

 private:
  std::unique_ptr<rocksdb::Iterator> inner_;  // destroyed before bound_
  std::unique_ptr<rocksdb::Slice> bound_;
};

}  // namespace

std::unique_ptr<rocksdb::Iterator> Group::NewIterator(
    rocksdb::ColumnFamilyHandle* cf, const std::string* upper) {
  std::unique_ptr<rocksdb::Slice> bound;
  rocksdb::ReadOptions read;
  if (upper != nullptr) {
    bound = std::make_unique<rocksdb::Slice>(*upper);
    read.iterate_upper_bound = bound.get();
  }
  rocksdb::Iterator* base = db_->NewIterator(read, cf);
  return std::make_unique<BoundedIterator>(batch_.NewIteratorWithBase(cf, base),
                                           std::move(bound));
}

// --- Open. -----------------------------------------------------------------

absl::StatusOr<std::unique_ptr<ReferralStore>> ReferralStore::Open(
    StoreOptions options) {
  ASSIGN_OR_RETURN(auto store, ReferralStoreImpl::OpenImpl(std::move(options)));
  return std::unique_ptr<ReferralStore>(std::move(store));
}

absl::StatusOr<std::unique_ptr<ReferralStoreImpl>> ReferralStoreImpl::OpenImpl(
    StoreOptions options) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError("path: the data directory is required");
  }
  if (options.max_deliveries < 1) {
    return absl::InvalidArgumentError("max_deliveries: must be at least 1");
  }
  if (options.max_group_size < 1) {
    return absl::InvalidArgumentError("max_group_size: must be at least 1");
  }
  if (options.decision_stats_window <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "decision_stats_window: must be positive");
  }
  if (!options.clock) options.clock = [] { return absl::Now(); };
  // Encryption at rest. The key is checked against the directory's KEYCHECK
  // before RocksDB touches the directory: RocksDB's Open rotates the info
  // log and may write before it reads anything encrypted, and a wrong key
  // would only show up as garbage after that.
  std::unique_ptr<rocksdb::Env> env;
  std::error_code error;
  if (!options.encryption_key_file.empty()) {
    ASSIGN_OR_RETURN(std::string key, ReadKeyFile(options.encryption_key_file));
    RETURN_IF_ERROR(
        CheckKeyFileOutsideDataDir(options.encryption_key_file, options.path));
    RETURN_IF_ERROR(CheckOrCreateKeyCheck(options.path, key));
    ASSIGN_OR_RETURN(env, NewEncryptedEnvWithKey(key));
  } else if (std::filesystem::exists(
                 std::filesystem::path(options.path) / kKeyCheckFileName,
                 error)) {
    // Opening an encrypted store without its key would have RocksDB rotate
    // its info log and write a plaintext one before failing on the
    // ciphertext; refuse before touching anything.
    return absl::FailedPreconditionError(
        "this data directory is encrypted: an encryption key file is "
        "required to open it");
  }
  std::filesystem::create_directories(options.path, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the data directory: ", error.message()));
  }

  auto cache = rocksdb::NewLRUCache(64 << 20);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int family = 0; family < kFamilyCount; ++family) {
    descriptors.emplace_back(kFamilyNames[family],
                             FamilyOptions(family, cache));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::DBOptions db_options = DatabaseOptions();
  std::shared_ptr<rocksdb::Logger> info_log = NewStoreInfoLog(
      env != nullptr ? env.get() : rocksdb::Env::Default(), options.path);
  db_options.info_log = info_log;
  auto error_listener = std::make_shared<BackgroundErrorListener>();
  db_options.listeners.push_back(error_listener);
  // Only the store resumes after a background error (TryRestoreWrites).
  db_options.max_bgerror_resume_count = 0;
  if (env != nullptr) {
    db_options.env = env.get();
    // The encrypted Env refuses memory-mapped files (their pages would be
    // ciphertext); these are RocksDB's defaults, set here so a later change
    // to DatabaseOptions cannot silently break encrypted stores.
    db_options.allow_mmap_reads = false;
    db_options.allow_mmap_writes = false;
  }
  rocksdb::Status s =
      rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &db);
  if (s.IsCorruption()) return DamagedStoreError(s);
  if (!s.ok()) return FromRocksStatus(s, "open");
  // RocksDB reads table files lazily: without this a damaged file would
  // only show when a read reached it, possibly long after the broker started
  // serving, and the damaged records would be missing from the queues
  // rebuilt below. Reading every block once (checksums verified) refuses a
  // damaged store before anything is served; it costs one sequential read
  // of the data at start (docs/storage.md, "Damaged files").
  s = db->VerifyChecksum();
  if (!s.ok()) {
    for (rocksdb::ColumnFamilyHandle* handle : handles) {
      db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    }
    db->Close().PermitUncheckedError();
    delete db;
    return DamagedStoreError(s);
  }

  std::unique_ptr<ReferralStoreImpl> store(new ReferralStoreImpl(
      std::move(options), std::move(env), std::move(info_log),
      std::move(error_listener), db, std::move(handles)));
  RETURN_IF_ERROR(store->Recover());
  // One small synced write at once: it shows the store can write, and it
  // leaves an entry in a memtable, without which RocksDB 7.8 could not
  // resume in place from a failure of the very first write (see
  // TryRestoreWrites).
  {
    rocksdb::WriteBatch probe;
    s = probe.Put(store->cf(kMeta), keys::WriteProbeMetaKey(),
                  keys::EncodeTime(ToMicros(absl::Now())));
    if (s.ok()) s = store->db_->Write(store->sync_write_, &probe);
    if (!s.ok()) return FromRocksStatus(s, "open");
  }
  store->StartThreads();
  return store;
}

ReferralStoreImpl::ReferralStoreImpl(
    StoreOptions options, std::unique_ptr<rocksdb::Env> env,
    std::shared_ptr<rocksdb::Logger> info_log,
    std::shared_ptr<BackgroundErrorListener> error_listener, rocksdb::DB* db,
    std::vector<rocksdb::ColumnFamilyHandle*> families)
    : options_(std::move(options)),
      env_(std::move(env)),
      info_log_(std::move(info_log)),
      error_listener_(std::move(error_listener)),
      db_(db),
      families_(std::move(families)),
      sync_write_([] {
        rocksdb::WriteOptions write;
        write.sync = true;
        return write;
      }()) {}

ReferralStoreImpl::~ReferralStoreImpl() {
  // A running backup reads the database: stop it first (its `done` sees
  // UNAVAILABLE).
  {
    absl::MutexLock lock(&backup_mu_);
    backup_stop_ = true;
    if (backup_engine_ != nullptr) backup_engine_->StopBackup();
  }
  if (backup_thread_.joinable()) backup_thread_.join();
  {
    absl::MutexLock lock(&reaper_mu_);
    reaper_stop_ = true;
  }
  if (reaper_thread_.joinable()) reaper_thread_.join();
  {
    absl::MutexLock lock(&queue_mu_);
    closing_ = true;  // the commit thread drains what is pending, then exits
  }
  if (commit_thread_.joinable()) commit_thread_.join();
  // The last groups' callers are answered before the database closes.
  completion_pool_.reset();
  {
    absl::WriterMutexLock lock(&state_mu_);
    committed_.snapshot.reset();
  }
  if (db_ == nullptr) return;
  {
    absl::MutexLock lock(&recovery_mu_);
    if (resume_thread_.joinable()) {
      // A Resume that never finished returns once background work is
      // cancelled; nothing more can be written anyway.
      if (!resume_attempt_->finished.HasBeenNotified()) {
        release_hung_resume_.Notify();
        rocksdb::CancelAllBackgroundWork(db_.get(), /*wait=*/false);
      }
      resume_thread_.join();
    }
  }
  // Flush so the next Open replays no log; every write is already synced.
  rocksdb::FlushOptions flush;
  flush.wait = true;
  rocksdb::Status s = db_->Flush(flush, families_);
  if (!s.ok()) LogWarning(absl::StrCat("flush at close: ", s.ToString()));
  // A log writer that failed must not be touched again (RocksDB 7.8
  // asserts on it); every commit was synced anyway.
  if (!error_listener_->log_write_failed()) {
    s = db_->SyncWAL();
    if (!s.ok()) LogWarning(absl::StrCat("WAL sync at close: ", s.ToString()));
  }
  for (rocksdb::ColumnFamilyHandle* handle : families_) {
    s = db_->DestroyColumnFamilyHandle(handle);
    if (!s.ok()) LogWarning(absl::StrCat("closing a family: ", s.ToString()));
  }
  families_.clear();
  s = db_->Close();
  if (!s.ok()) LogWarning(absl::StrCat("close: ", s.ToString()));
}

absl::Status ReferralStoreImpl::Recover() {
  // Runs before any thread starts; the lock only satisfies the annotations.
  absl::WriterMutexLock lock(&state_mu_);
  CommittedState& state = committed_;
  rocksdb::ReadOptions read;
  read.fill_cache = false;

  // The next seq: the stored high-water, never below the last record + 1.
  std::string value;
  rocksdb::Status s = db_->Get(read, cf(kMeta), keys::NextSeqMetaKey(), &value);
  if (s.ok()) {
    std::optional<uint64_t> next = keys::ReadUint64(value);
    if (!next) return absl::DataLossError("meta: next seq is unreadable");
    state.next_seq = std::max<uint64_t>(*next, 1);
  } else if (!s.IsNotFound()) {
    return FromRocksStatus(s, "recovery");
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(read, cf(kReferrals)));
    it->SeekToLast();
    if (it->Valid()) {
      std::optional<uint64_t> last =
          keys::DecodeReferralKey(it->key().ToStringView());
      if (!last) return absl::DataLossError("referrals: unreadable key");
      state.next_seq = std::max(state.next_seq, *last + 1);
    }
    if (!it->status().ok()) return FromRocksStatus(it->status(), "recovery");
  }

  // The audit chain continues from its last record.
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(kAudit)));
    it->SeekToLast();
    if (it->Valid()) {
      std::optional<uint64_t> last =
          audit::DecodeAuditKey(it->key().ToStringView());
      AuditRecord record;
      if (!last ||
          !record.ParseFromArray(it->value().data(),
                                 static_cast<int>(it->value().size()))) {
        return absl::DataLossError("audit: the last record is unreadable");
      }
      state.audit_head.next_seq = *last + 1;
      state.audit_head.last_hash = record.hash();
    }
    if (!it->status().ok()) return FromRocksStatus(it->status(), "recovery");
  }

  auto queue = [&](const std::string& name) -> QueueState& {
    auto [it, inserted] = state.queues.try_emplace(name);
    if (inserted) {
      const std::string prefix = keys::NamePrefix(name);
      it->second.ready = IndexHead(prefix, 0);
      it->second.arrival = IndexHead(prefix, 0);
      it->second.dead_letters = IndexHead(prefix, 0);
    }
    return it->second;
  };

  // Each index is scanned once here: the only time the tombstones at the
  // heads of the queues are crossed. Each range's first live key becomes
  // its low-water mark.
  struct Range {
    std::string first;
    int64_t live = 0;
  };
  auto scan =
      [&](Family family,
          absl::FunctionRef<std::optional<std::string>(std::string_view,
                                                       std::string_view)>
              range_of) -> absl::StatusOr<std::map<std::string, Range>> {
    std::map<std::string, Range> ranges;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(family)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::optional<std::string> range =
          range_of(it->key().ToStringView(), it->value().ToStringView());
      if (!range) {
        return absl::DataLossError(
            absl::StrCat(kFamilyNames[family], ": unreadable index key"));
      }
      Range& r = ranges[*range];
      if (r.live++ == 0) r.first = it->key().ToString();
    }
    if (!it->status().ok()) return FromRocksStatus(it->status(), "recovery");
    return ranges;
  };

  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(kMeta)));
    const std::string prefix = keys::NamePrefix("queue");
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      std::optional<std::string> name =
          keys::DecodeKnownQueueMetaKey(it->key().ToStringView());
      if (!name) return absl::DataLossError("meta: unreadable queue key");
      queue(*name).persisted = true;
    }
    if (!it->status().ok()) return FromRocksStatus(it->status(), "recovery");
  }

  ASSIGN_OR_RETURN(
      auto ready, scan(kReady, [](std::string_view key, std::string_view) {
        auto k = keys::DecodeReadyKey(key);
        return k ? std::optional<std::string>(k->queue) : std::nullopt;
      }));
  for (auto& [name, range] : ready) {
    queue(name).ready = IndexHead(range.first, range.live);
  }
  ASSIGN_OR_RETURN(
      auto arrival, scan(kArrival, [](std::string_view key, std::string_view) {
        auto k = keys::DecodeArrivalKey(key);
        return k ? std::optional<std::string>(k->queue) : std::nullopt;
      }));
  for (auto& [name, range] : arrival) {
    queue(name).arrival = IndexHead(range.first, range.live);
  }
  ASSIGN_OR_RETURN(
      auto dead, scan(kDeadLetters, [](std::string_view key, std::string_view) {
        auto k = keys::DecodeDeadLetterKey(key);
        return k ? std::optional<std::string>(k->queue) : std::nullopt;
      }));
  for (auto& [name, range] : dead) {
    queue(name).dead_letters = IndexHead(range.first, range.live);
  }
  ASSIGN_OR_RETURN(auto outcomes,
                   scan(kOutcomes, [](std::string_view key, std::string_view) {
                     auto k = keys::DecodeOutcomeKey(key);
                     return k ? std::optional<std::string>(k->agency_id)
                              : std::nullopt;
                   }));
  for (auto& [agency, range] : outcomes) {
    state.outcomes[agency] = IndexHead(range.first, range.live);
  }

  // Leases: rebuild the claimed referrals' due times from their records.
  std::vector<std::pair<uint64_t, std::string>> leased;
  ASSIGN_OR_RETURN(auto leases, scan(kLeases, [&](std::string_view key,
                                                  std::string_view value) {
                     auto k = keys::DecodeLeaseKey(key);
                     if (!k || !keys::IsValidName(value)) {
                       return std::optional<std::string>();
                     }
                     leased.emplace_back(k->seq, std::string(value));
                     return std::optional<std::string>("");
                   }));
  state.leases = leases.empty() ? IndexHead("", 0)
                                : IndexHead(leases[""].first, leases[""].live);
  for (const auto& [seq, name] : leased) {
    s = db_->Get(read, cf(kReferrals), keys::ReferralKey(seq), &value);
    StoredReferral record;
    if (!s.ok() || !record.ParseFromString(value)) {
      return absl::DataLossError(
          absl::StrCat("leases: no readable record for seq ", seq));
    }
    queue(name).claimed_due[seq] = record.due_at_us();
  }

  state.snapshot = NewSnapshot();
  return absl::OkStatus();
}

void ReferralStoreImpl::StartThreads() {
  completion_pool_ = std::make_unique<CompletionPool>(
      std::max(1, options_.completion_threads));
  commit_thread_ = std::thread([this] {
    NameThisThread("store-commit");
    CommitLoop();
  });
  if (options_.lease_check_interval > absl::ZeroDuration()) {
    reaper_thread_ = std::thread([this] {
      NameThisThread("store-leases");
      ReaperLoop();
    });
  }
  backup_thread_ = std::thread([this] {
    NameThisThread("store-backup");
    BackupLoop();
  });
}

std::shared_ptr<const rocksdb::Snapshot> ReferralStoreImpl::NewSnapshot() {
  rocksdb::DB* db = db_.get();
  return std::shared_ptr<const rocksdb::Snapshot>(
      db->GetSnapshot(),
      [db](const rocksdb::Snapshot* s) { db->ReleaseSnapshot(s); });
}

// --- Mutations: enqueue. ---------------------------------------------------

void ReferralStoreImpl::Enqueue(std::unique_ptr<Op> op) {
  op->enqueued_at = absl::Now();
  {
    absl::MutexLock lock(&queue_mu_);
    if (!closing_) {
      pending_.push_back(std::move(op));
      return;
    }
  }
  op->Complete(absl::UnavailableError("the referral store is closing"));
}

void ReferralStoreImpl::Submit(SubmitCommand command, Done<SubmitResult> done) {
  AuditWho who = Who(command.audit, command.actor);
  // Hashing the referral is work for the caller's thread, not the commit
  // thread that every mutation waits for.
  absl::StatusOr<std::string> fingerprint = Fingerprint(command.referral);
  Enqueue(MakeOp<SubmitResult>(
      [this, command = std::move(command),
       fingerprint = std::move(fingerprint)](Group& group) mutable {
        return ApplySubmit(command, fingerprint, group);
      },
      std::move(done),
      [who = std::move(who)](const absl::StatusOr<SubmitResult>& r) {
        // A refused submission has no referral id yet.
        return std::vector<AuditEntry>{
            {who.principal, who.on_behalf_of, "submit",
             r.ok() ? r->record.referral_id() : "", ResultName(r.status())}};
      }));
}

void ReferralStoreImpl::Claim(ClaimCommand command,
                              Done<std::vector<StoredReferral>> done) {
  AuditWho who = Who(command.audit, command.actor);
  Enqueue(MakeOp<std::vector<StoredReferral>>(
      [this, command = std::move(command)](Group& group) {
        return ApplyClaim(command, group);
      },
      std::move(done),
      [who = std::move(who)](
          const absl::StatusOr<std::vector<StoredReferral>>& r) {
        // One record per referral handed out. An empty claim touched no
        // personal data and appends nothing, so idle polling does not fill
        // the trail.
        std::vector<AuditEntry> entries;
        if (!r.ok()) {
          entries.push_back({who.principal, who.on_behalf_of, "claim", "",
                             ResultName(r.status())});
          return entries;
        }
        for (const StoredReferral& record : *r) {
          entries.push_back({who.principal, who.on_behalf_of, "claim",
                             record.referral_id(), "OK"});
        }
        return entries;
      }));
}

void ReferralStoreImpl::Extend(ExtendCommand command, Done<absl::Time> done) {
  auto audit = AuditOne<absl::Time>(Who(command.audit, command.actor), "extend",
                                    AuditableId(command.referral_id));
  Enqueue(MakeOp<absl::Time>(
      [this, command = std::move(command)](Group& group) {
        return ApplyExtend(command, group);
      },
      std::move(done), std::move(audit)));
}

void ReferralStoreImpl::Release(ReleaseCommand command,
                                Done<::referral::v1::ReferralState> done) {
  auto audit = AuditOne<::referral::v1::ReferralState>(
      Who(command.audit, command.actor), "release",
      AuditableId(command.referral_id));
  Enqueue(MakeOp<::referral::v1::ReferralState>(
      [this, command = std::move(command)](Group& group) {
        return ApplyRelease(command, group);
      },
      std::move(done), std::move(audit)));
}

void ReferralStoreImpl::Decide(DecideCommand command, Done<absl::Time> done) {
  auto audit = AuditOne<absl::Time>(Who(command.audit, command.actor), "decide",
                                    AuditableId(command.referral_id));
  Enqueue(MakeOp<absl::Time>(
      [this, command = std::move(command)](Group& group) {
        return ApplyDecide(command, group);
      },
      std::move(done), std::move(audit)));
}

void ReferralStoreImpl::AcknowledgeOutcome(AcknowledgeCommand command,
                                           Done<AcknowledgeResult> done) {
  auto audit = AuditOne<AcknowledgeResult>(Who(command.audit, command.actor),
                                           "acknowledge_outcome",
                                           AuditableId(command.referral_id));
  Enqueue(MakeOp<AcknowledgeResult>(
      [this, command = std::move(command)](Group& group) {
        return ApplyAcknowledge(command, group);
      },
      std::move(done), std::move(audit)));
}

void ReferralStoreImpl::RequeueDeadLetter(RequeueCommand command,
                                          Done<std::string> done) {
  auto audit =
      AuditOne<std::string>(Who(command.audit, command.actor), "requeue",
                            AuditableId(command.referral_id));
  Enqueue(MakeOp<std::string>(
      [this, command = std::move(command)](Group& group) {
        return ApplyRequeue(command, group);
      },
      std::move(done), std::move(audit)));
}

void ReferralStoreImpl::ExpireLeases(Done<int> done) {
  // Filled by the apply function, read by the audit function right after.
  auto expired = std::make_shared<std::vector<std::string>>();
  Enqueue(MakeOp<int>(
      [this, expired](Group& group) {
        return ApplyExpireLeases(group, expired.get());
      },
      std::move(done),
      [expired](const absl::StatusOr<int>& r) {
        std::vector<AuditEntry> entries;
        if (!r.ok()) {
          entries.push_back(
              {"broker", "", "lease_expired", "", ResultName(r.status())});
          return entries;
        }
        for (const std::string& id : *expired) {
          entries.push_back({"broker", "", "lease_expired", id, "OK"});
        }
        return entries;
      }));
}

void ReferralStoreImpl::RecordAccess(AccessRecord access,
                                     Done<absl::Time> done) {
  if (access.action.empty()) {
    std::move(done)(absl::InvalidArgumentError("action: must be set"));
    return;
  }
  Enqueue(MakeOp<absl::Time>(
      [this](Group&) -> absl::StatusOr<absl::Time> { return options_.clock(); },
      std::move(done),
      [access = std::move(access)](const absl::StatusOr<absl::Time>& r) {
        AuditEntry entry{access.principal, access.on_behalf_of, access.action,
                         access.referral_id, access.result};
        if (r.ok()) entry.at = *r;
        return std::vector<AuditEntry>{std::move(entry)};
      }));
}

// --- Group commit. ---------------------------------------------------------

void ReferralStoreImpl::CommitLoop() {
  for (;;) {
    std::vector<std::unique_ptr<Op>> ops;
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(
          absl::Condition(this, &ReferralStoreImpl::HasPendingOrClosing));
      if (pending_.empty()) return;  // closing, and everything is done
      const size_t n = std::min(pending_.size(),
                                static_cast<size_t>(options_.max_group_size));
      ops.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        ops.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    RunGroup(ops);
  }
}

void ReferralStoreImpl::RunGroup(std::vector<std::unique_ptr<Op>>& ops) {
  // Real time, not options_.clock: these time work, they are not records.
  const absl::Time started = absl::Now();
  Group group(CommittedForCommitThread(), db_.get());
  std::vector<absl::Status> results(ops.size());
  absl::Status group_status;
  for (size_t i = 0; i < ops.size(); ++i) {
    const UndoLog::Mark undo_mark = group.undo().mark();
    const size_t events_mark = group.events().size();
    group.batch().SetSavePoint();
    results[i] = ops[i]->Apply(group);
    if (results[i].ok()) {
      group.batch().PopSavePoint();
    } else {
      // The mutation failed: leave nothing of it in the batch or in memory.
      rocksdb::Status rollback = group.batch().RollbackToSavePoint();
      group.undo().RollbackTo(undo_mark);
      group.events().resize(events_mark);
      if (!rollback.ok()) {
        group_status = FromRocksStatus(rollback, "commit");
        break;
      }
    }
    // Its audit records go into the same batch (after any rollback, so a
    // refused mutation is still on the record), and commit or fail with it.
    group_status = AppendAudit(group, ops[i]->AuditEntries(results[i]));
    if (!group_status.ok()) break;
  }
  if (group_status.ok() &&
      group.next_seq() != CommittedForCommitThread().next_seq) {
    // The seq high-water, once per group rather than once per submission.
    group_status =
        FromRocksStatus(group.batch().Put(cf(kMeta), keys::NextSeqMetaKey(),
                                          keys::EncodeUint64(group.next_seq())),
                        "batch");
  }
  if (group_status.ok()) group_status = AdvanceHeads(group);
  const bool wrote = group.batch().GetWriteBatch()->Count() > 0;
  if (group_status.ok() && wrote && !writes_healthy_.load()) {
    // After a failed write, RocksDB may refuse every write until it is
    // resumed; show that writing works again before committing the group.
    group_status = TryRestoreWrites();
  }
  const absl::Time applied = absl::Now();
  if (group_status.ok() && wrote) {
    rocksdb::Status s;
    switch (injected_write_failure_.exchange(0)) {
      case 1 + static_cast<int>(internal::WriteFailure::kNoSpace):
        s = rocksdb::Status::NoSpace("injected by a test");
        break;
      case 1 + static_cast<int>(internal::WriteFailure::kIoError):
        s = rocksdb::Status::IOError("injected by a test");
        break;
      default:
        s = db_->Write(sync_write_, group.batch().GetWriteBatch());
    }
    if (!s.ok()) {
      group_status = FromRocksStatus(s, "commit");
      MarkWriteFailed(group_status);
    }
  }
  if (!group_status.ok()) {
    // Nothing was stored and nothing in memory changed; every mutation in
    // the group gets an error (their results may rest on each other).
    for (size_t i = 0; i < ops.size(); ++i) {
      if (results[i].ok()) results[i] = group_status;
    }
    CompleteOnPool(ops, results);
    return;
  }
  const absl::Time synced = absl::Now();
  Publish(group, wrote);
  if (options_.on_committed && !group.events().empty()) {
    options_.on_committed(group.events());
  }
  const GroupCommitTiming timing{.mutations = static_cast<int>(ops.size()),
                                 .waited = started - ops.front()->enqueued_at,
                                 .applied = applied - started,
                                 .synced = synced - applied};
  CompleteOnPool(ops, results);
  if (wrote && options_.on_group_committed) {
    options_.on_group_committed(timing);
  }
}

void ReferralStoreImpl::CompleteOnPool(std::vector<std::unique_ptr<Op>>& ops,
                                       std::vector<absl::Status>& results) {
  std::vector<absl::AnyInvocable<void() &&>> completions;
  completions.reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    completions.push_back(
        [op = std::move(ops[i]), status = std::move(results[i])]() mutable {
          op->Complete(std::move(status));
        });
  }
  completion_pool_->Run(std::move(completions));
}

absl::Status ReferralStoreImpl::AppendAudit(Group& group,
                                            std::vector<AuditEntry> entries) {
  audit::ChainHead& head = group.audit_head();
  for (AuditEntry& entry : entries) {
    AuditRecord record;
    record.set_seq(head.next_seq);
    record.set_at_us(absl::ToUnixMicros(entry.at.value_or(options_.clock())));
    record.set_principal(std::move(entry.principal));
    record.set_on_behalf_of(std::move(entry.on_behalf_of));
    record.set_action(std::move(entry.action));
    record.set_referral_id(std::move(entry.referral_id));
    record.set_result(std::move(entry.result));
    record.set_previous_hash(head.last_hash);
    ASSIGN_OR_RETURN(std::string hash, audit::ComputeHash(record));
    record.set_hash(hash);
    rocksdb::Status s = group.batch().Put(
        cf(kAudit), audit::AuditKey(record.seq()), record.SerializeAsString());
    if (!s.ok()) return FromRocksStatus(s, "audit");
    head.next_seq = record.seq() + 1;
    head.last_hash = std::move(hash);
  }
  return absl::OkStatus();
}

absl::Status ReferralStoreImpl::AdvanceHeads(Group& group) {
  auto advance = [&](IndexHead& head, Family family,
                     const std::string* upper) -> absl::Status {
    if (!head.needs_advance()) return absl::OkStatus();
    std::optional<std::string> first;
    if (head.live_from_low_water() > 0) {
      std::unique_ptr<rocksdb::Iterator> it =
          group.NewIterator(cf(family), upper);
      ASSIGN_OR_RETURN(first, FirstKey(*it, head.low_water(), upper));
    }
    head.Advance(first, &group.undo());
    return absl::OkStatus();
  };
  for (auto& [name, queue] : group.touched_queues()) {
    const std::string end = keys::NamePrefixEnd(name);
    RETURN_IF_ERROR(advance(queue.ready, kReady, &end));
    RETURN_IF_ERROR(advance(queue.arrival, kArrival, &end));
    RETURN_IF_ERROR(advance(queue.dead_letters, kDeadLetters, &end));
  }
  for (auto& [agency, head] : group.touched_outcomes()) {
    const std::string end = keys::NamePrefixEnd(agency);
    RETURN_IF_ERROR(advance(head, kOutcomes, &end));
  }
  if (group.touched_leases().has_value()) {
    RETURN_IF_ERROR(advance(*group.touched_leases(), kLeases, nullptr));
  }
  return absl::OkStatus();
}

void ReferralStoreImpl::Publish(Group& group, bool wrote) {
  // The snapshot is taken before anything else can write (this thread is the
  // only writer), so it matches the in-memory state published with it. A
  // group that wrote nothing (empty claims, idle reaper passes: every other
  // mutation, even a refused one, writes at least its audit record) keeps
  // the current one.
  std::shared_ptr<const rocksdb::Snapshot> snapshot;
  if (wrote) snapshot = NewSnapshot();
  group.undo().Clear();
  absl::WriterMutexLock lock(&state_mu_);
  // In place: the group's copies are overlays on these (Group::Queue).
  for (auto& [name, queue] : group.touched_queues()) {
    auto committed = committed_.queues.find(name);
    if (committed == committed_.queues.end()) {
      committed_.queues.emplace(name, std::move(queue));
    } else {
      committed->second.Absorb(std::move(queue));
    }
  }
  for (auto& [agency, head] : group.touched_outcomes()) {
    auto committed = committed_.outcomes.find(agency);
    if (committed == committed_.outcomes.end()) {
      committed_.outcomes.emplace(agency, std::move(head));
    } else {
      committed->second.Absorb(std::move(head));
    }
  }
  if (group.touched_leases().has_value()) {
    committed_.leases.Absorb(std::move(*group.touched_leases()));
  }
  committed_.next_seq = group.next_seq();
  committed_.audit_head = group.audit_head();
  if (snapshot != nullptr) committed_.snapshot = std::move(snapshot);
}

void ReferralStoreImpl::ReaperLoop() {
  for (;;) {
    // The first pass runs at once: leases that expired while the store was
    // closed go back to their queues straight after Open.
    absl::Notification finished;
    ExpireLeases([&finished](absl::StatusOr<int> expired) {
      if (!expired.ok()) {
        LogWarning(absl::StrCat("lease expiry: ", expired.status().ToString()));
      }
      finished.Notify();
    });
    finished.WaitForNotification();
    // An idle store must notice that it can write again too.
    if (!writes_healthy_.load()) TryRestoreWrites().IgnoreError();
    absl::MutexLock lock(&reaper_mu_);
    if (reaper_mu_.AwaitWithTimeout(absl::Condition(&reaper_stop_),
                                    options_.lease_check_interval)) {
      return;
    }
  }
}

// --- Write health. ---------------------------------------------------------

namespace {
// Appended to the health of a store that cannot recover in place.
constexpr absl::string_view kRestart =
    "; writes cannot resume in place: restart the broker";
}  // namespace

void ReferralStoreImpl::MarkWriteFailed(const absl::Status& status) {
  absl::MutexLock order(&recovery_mu_);
  bool was_healthy;
  {
    absl::MutexLock lock(&health_mu_);
    was_healthy = write_health_.ok();
    write_health_ = status;
    writes_healthy_.store(false);
  }
  // The first attempt to recover may come at once.
  last_recovery_attempt_ = absl::InfinitePast();
  if (was_healthy) {
    LogWarning(absl::StrCat("writes failing: ", status.ToString()));
    if (options_.on_write_health_changed) {
      options_.on_write_health_changed(status);
    }
  }
}

absl::Status ReferralStoreImpl::TryRestoreWrites() {
  absl::MutexLock order(&recovery_mu_);
  {
    absl::MutexLock lock(&health_mu_);
    if (write_health_.ok()) return absl::OkStatus();
    // Real time, not options_.clock: this paces work, it is not a record.
    if (absl::Now() - last_recovery_attempt_ < absl::Seconds(1)) {
      return write_health_;
    }
  }
  last_recovery_attempt_ = absl::Now();
  // A failed write-ahead-log write leaves RocksDB in a background-error
  // state in which it refuses every write until resumed (a no-op without a
  // background error). Resume flushes the memtables, and the first flush
  // switches to a new log: the failed one, whose writer RocksDB 7.8 keeps
  // marked failed, is never written again. That switch only happens when an
  // active memtable holds something; without it the next write would go to
  // the failed writer, which fails for good (and aborts a RocksDB built with
  // assertions, as Debian's is). So opening, and every resume, leave an
  // entry in a memtable; should they all be empty anyway (every family
  // flushed just before the failed write), the store stays unhealthy until
  // it is reopened.
  if (error_listener_->log_write_failed() && !ActiveMemtablesHoldData()) {
    absl::MutexLock lock(&health_mu_);
    if (!absl::StrContains(write_health_.message(), kRestart)) {
      write_health_ =
          absl::Status(write_health_.code(),
                       absl::StrCat(write_health_.message(), kRestart));
      LogWarning(write_health_.ToString());
    }
    return write_health_;
  }
  // Resuming starts a new log file, and RocksDB treats failing to create
  // one as fatal (only reopening clears it). Creating a file fails on a
  // full disk when the store is encrypted (the encrypted Env writes each
  // file's prefix at once), so first make sure a file can be written.
  rocksdb::Status s = ProbeFileWrite();
  if (s.ok()) s = ResumeWithin(resume_limit_);
  const bool resume_stuck = s.IsAborted();
  rocksdb::WriteBatch probe;
  if (s.ok()) {
    error_listener_->clear_log_write_failed();
    s = probe.Put(cf(kMeta), keys::WriteProbeMetaKey(),
                  keys::EncodeTime(ToMicros(absl::Now())));
  }
  if (s.ok()) {
    // Resume flushed every memtable. Should the synced probe below fail
    // too, a memtable entry is what lets the next Resume start a new log,
    // so put one there first, bypassing the log (a lost probe costs
    // nothing).
    rocksdb::WriteOptions memtable_only;
    memtable_only.disableWAL = true;
    s = db_->Write(memtable_only, &probe);
  }
  if (s.ok()) s = db_->Write(sync_write_, &probe);
  absl::Status health =
      s.ok() ? absl::OkStatus() : FromRocksStatus(s, "commit");
  if (resume_stuck || s.severity() >= rocksdb::Status::Severity::kFatalError) {
    health =
        absl::Status(health.code(), absl::StrCat(health.message(), kRestart));
  }
  // The first time the store knows it cannot resume in place, operators
  // must hear it (the broker logs it): nothing will recover by itself.
  bool needs_restart;
  {
    absl::MutexLock lock(&health_mu_);
    needs_restart = absl::StrContains(health.message(), kRestart) &&
                    !absl::StrContains(write_health_.message(), kRestart);
    write_health_ = health;
    writes_healthy_.store(health.ok());
  }
  if (needs_restart) {
    LogWarning(health.ToString());
    if (options_.on_write_health_changed) {
      options_.on_write_health_changed(health);
    }
  }
  if (health.ok()) {
    LogWarning("writes succeed again");
    if (options_.on_write_health_changed) {
      options_.on_write_health_changed(health);
    }
  }
  return health;
}

rocksdb::Status ReferralStoreImpl::ResumeWithin(absl::Duration limit) {
  if (resume_thread_.joinable()) {
    if (!resume_attempt_->finished.HasBeenNotified()) {
      return rocksdb::Status::Aborted("an earlier resume never finished");
    }
    resume_thread_.join();
  }
  resume_attempt_ = std::make_shared<ResumeAttempt>();
  resume_thread_ = std::thread([this, attempt = resume_attempt_] {
    if (hang_next_resume_.exchange(false)) {
      // A test standing in for RocksDB's endless wait.
      release_hung_resume_.WaitForNotification();
      attempt->status = rocksdb::Status::ShutdownInProgress();
    } else {
      attempt->status = db_->Resume();
    }
    attempt->finished.Notify();
  });
  if (!resume_attempt_->finished.WaitForNotificationWithTimeout(limit)) {
    return rocksdb::Status::Aborted(
        absl::StrCat("resume unfinished after ", absl::FormatDuration(limit)));
  }
  resume_thread_.join();
  return resume_attempt_->status;
}

rocksdb::Status ReferralStoreImpl::ProbeFileWrite() {
  constexpr size_t kProbeBytes = 1 << 20;
  rocksdb::Env* env = env_ != nullptr ? env_.get() : rocksdb::Env::Default();
  const std::string path = options_.path + "/WRITE_PROBE";
  std::unique_ptr<rocksdb::WritableFile> file;
  rocksdb::Status s = env->NewWritableFile(path, &file, rocksdb::EnvOptions());
  if (s.ok()) s = file->Append(std::string(kProbeBytes, '\0'));
  if (s.ok()) s = file->Sync();
  if (file != nullptr) {
    rocksdb::Status closed = file->Close();
    if (s.ok()) s = closed;
  }
  env->DeleteFile(path).PermitUncheckedError();
  return s;
}

bool ReferralStoreImpl::ActiveMemtablesHoldData() {
  for (rocksdb::ColumnFamilyHandle* family : families_) {
    uint64_t entries = 0;
    if (db_->GetIntProperty(family,
                            rocksdb::DB::Properties::kNumEntriesActiveMemTable,
                            &entries) &&
        entries > 0) {
      return true;
    }
  }
  return false;
}

void BackgroundErrorListener::OnBackgroundError(
    rocksdb::BackgroundErrorReason reason, rocksdb::Status* error) {
  if (reason == rocksdb::BackgroundErrorReason::kWriteCallback) {
    log_write_failed_.store(true);
  }
}

void BackgroundErrorListener::OnErrorRecoveryBegin(
    rocksdb::BackgroundErrorReason reason, rocksdb::Status error,
    bool* auto_recovery) {
  // RocksDB's own recovery (its SstFileManager's, for a full disk) would
  // resume without the store's check above.
  *auto_recovery = false;
}

absl::Status ReferralStoreImpl::WriteHealth() {
  absl::MutexLock lock(&health_mu_);
  return write_health_;
}

// --- Statistics. -----------------------------------------------------------

StoreStatistics ReferralStoreImpl::GetStoreStatistics() {
  StoreStatistics statistics;
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
  for (rocksdb::ColumnFamilyHandle* family : families_) {
    uint64_t pending = 0;
    if (db_->GetIntProperty(
            family, rocksdb::DB::Properties::kEstimatePendingCompactionBytes,
            &pending)) {
      statistics.pending_compaction_bytes += static_cast<int64_t>(pending);
    }
  }
  return statistics;
}

// --- Reads. ----------------------------------------------------------------

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

absl::StatusOr<ReferralPage> ReferralStoreImpl::ListRange(
    Family family, const std::string& prefix, const IndexHead* head,
    const std::shared_ptr<const rocksdb::Snapshot>& snapshot, int page_size,
    std::string_view page_token,
    absl::FunctionRef<std::optional<uint64_t>(std::string_view)> seq_of) {
  page_size = ClampPageSize(page_size);
  ASSIGN_OR_RETURN(std::optional<std::string> after,
                   ParsePageToken(page_token, prefix, seq_of));
  ReferralPage page;
  if (head == nullptr || head->live() == 0) return page;

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
  const bool more = found.size() > static_cast<size_t>(page_size);
  if (more) found.pop_back();
  for (const std::string& key : found) {
    std::optional<uint64_t> seq = seq_of(key);
    if (!seq) return absl::DataLossError("index: unreadable key");
    ASSIGN_OR_RETURN(StoredReferral record, ReadBySeq(snapshot.get(), *seq));
    page.referrals.push_back(std::move(record));
  }
  if (more) page.next_page_token = keys::ToHex(found.back());
  return page;
}

absl::StatusOr<ReferralPage> ReferralStoreImpl::ListQueue(
    std::string_view queue, int page_size, std::string_view page_token) {
  if (!keys::IsValidName(queue)) {
    return absl::InvalidArgumentError("queue: not a queue name");
  }
  std::optional<IndexHead> head;
  std::shared_ptr<const rocksdb::Snapshot> snapshot;
  {
    absl::ReaderMutexLock lock(&state_mu_);
    auto it = committed_.queues.find(queue);
    if (it != committed_.queues.end()) head = it->second.ready;
    snapshot = committed_.snapshot;
  }
  return ListRange(kReady, keys::NamePrefix(queue), head ? &*head : nullptr,
                   snapshot, page_size, page_token,
                   [queue](std::string_view key) -> std::optional<uint64_t> {
                     auto k = keys::DecodeReadyKey(key);
                     if (!k || k->queue != queue) return std::nullopt;
                     return k->seq;
                   });
}

absl::StatusOr<ReferralPage> ReferralStoreImpl::ListOutcomes(
    std::string_view agency_id, int page_size, std::string_view page_token) {
  if (!keys::IsValidName(agency_id)) {
    return absl::InvalidArgumentError("agency_id: not an agency id");
  }
  std::optional<IndexHead> head;
  std::shared_ptr<const rocksdb::Snapshot> snapshot;
  {
    absl::ReaderMutexLock lock(&state_mu_);
    auto it = committed_.outcomes.find(agency_id);
    if (it != committed_.outcomes.end()) head = it->second;
    snapshot = committed_.snapshot;
  }
  return ListRange(
      kOutcomes, keys::NamePrefix(agency_id), head ? &*head : nullptr, snapshot,
      page_size, page_token,
      [agency_id](std::string_view key) -> std::optional<uint64_t> {
        auto k = keys::DecodeOutcomeKey(key);
        if (!k || k->agency_id != agency_id) return std::nullopt;
        return k->seq;
      });
}

absl::StatusOr<ReferralPage> ReferralStoreImpl::ListDeadLetters(
    std::string_view queue, int page_size, std::string_view page_token) {
  if (!keys::IsValidName(queue)) {
    return absl::InvalidArgumentError("queue: not a queue name");
  }
  std::optional<IndexHead> head;
  std::shared_ptr<const rocksdb::Snapshot> snapshot;
  {
    absl::ReaderMutexLock lock(&state_mu_);
    auto it = committed_.queues.find(queue);
    if (it != committed_.queues.end()) head = it->second.dead_letters;
    snapshot = committed_.snapshot;
  }
  return ListRange(kDeadLetters, keys::NamePrefix(queue),
                   head ? &*head : nullptr, snapshot, page_size, page_token,
                   [queue](std::string_view key) -> std::optional<uint64_t> {
                     auto k = keys::DecodeDeadLetterKey(key);
                     if (!k || k->queue != queue) return std::nullopt;
                     return k->seq;
                   });
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

std::vector<QueueCounts> ReferralStoreImpl::GetQueueCounts(absl::Time now) {
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
      const std::string end = keys::NamePrefixEnd(copy.name);
      rocksdb::Slice upper(end);
      rocksdb::ReadOptions read;
      read.snapshot = snapshot.get();
      read.iterate_upper_bound = &upper;
      std::unique_ptr<rocksdb::Iterator> it(
          db_->NewIterator(read, cf(kArrival)));
      it->Seek(copy.arrival.low_water());
      if (it->Valid()) {
        consider(it->key().ToStringView(), it->value().ToStringView());
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
    copy.ready.VisitStragglers(
        nullptr, [&](const std::string& key, const std::string&) {
          std::optional<keys::ReadyKey> k = keys::DecodeReadyKey(key);
          if (!k) return true;
          if (k->due_at_us <= now_us) {
            ++counts.overdue;
          } else if (k->due_at_us <= hour_us) {
            ++counts.due_within_hour;
          }
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
    for (const auto& [seq, due] : copy.claimed_due) {
      if (due <= now_us) {
        ++counts.overdue;
      } else if (due <= hour_us) {
        ++counts.due_within_hour;
      }
    }

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

absl::StatusOr<ReferralPage> ReferralStoreImpl::ListNotices(
    std::string_view queue, int page_size, std::string_view page_token) {
  if (!keys::IsValidName(queue)) {
    return absl::InvalidArgumentError("queue: not a queue name");
  }
  page_size = ClampPageSize(page_size);
  const std::string prefix = keys::NamePrefix(queue);
  auto seq_of = [queue](std::string_view key) -> std::optional<uint64_t> {
    auto k = keys::DecodeNoticeKey(key);
    if (!k || k->queue != queue) return std::nullopt;
    return k->seq;
  };
  ASSIGN_OR_RETURN(std::optional<std::string> after,
                   ParsePageToken(page_token, prefix, seq_of));
  std::shared_ptr<const rocksdb::Snapshot> snapshot = CurrentSnapshot();

  // Newest first: read backwards from the end of the queue's range, or from
  // just below the last key of the previous page. Notices are never
  // deleted, so the read steps over no tombstones.
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

  ReferralPage page;
  const bool more = found.size() > static_cast<size_t>(page_size);
  if (more) found.pop_back();
  for (const std::string& key : found) {
    std::optional<uint64_t> seq = seq_of(key);
    if (!seq) return absl::DataLossError("notice index: unreadable key");
    ASSIGN_OR_RETURN(StoredReferral record, ReadBySeq(snapshot.get(), *seq));
    page.referrals.push_back(std::move(record));
  }
  if (more) page.next_page_token = keys::ToHex(found.back());
  return page;
}

std::vector<OutcomeBacklog> ReferralStoreImpl::GetOutcomeBacklog(
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
        const std::string end = keys::NamePrefixEnd(agency);
        rocksdb::Slice upper(end);
        rocksdb::ReadOptions read;
        read.snapshot = snapshot.get();
        read.iterate_upper_bound = &upper;
        std::unique_ptr<rocksdb::Iterator> it(
            db_->NewIterator(read, cf(kOutcomes)));
        it->Seek(head.low_water());
        if (it->Valid()) {
          std::optional<keys::OutcomeKey> k =
              keys::DecodeOutcomeKey(it->key().ToStringView());
          if (k) oldest = k->decided_at_us;
        }
        if (!it->status().ok()) {
          LogWarning("outcome backlog: outcome index read failed");
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

int64_t ReferralStoreImpl::ReadyCount(std::string_view queue) {
  absl::ReaderMutexLock lock(&state_mu_);
  auto it = committed_.queues.find(queue);
  return it == committed_.queues.end() ? 0 : it->second.ready.live();
}

bool ReferralStoreImpl::KnowsQueue(std::string_view queue) {
  absl::ReaderMutexLock lock(&state_mu_);
  return committed_.queues.find(queue) != committed_.queues.end();
}

// --- Diagnostics. ----------------------------------------------------------

internal::SeekCost ReferralStoreImpl::last_claim_seek_cost() const {
  return internal::SeekCost{last_claim_keys_skipped_.load(),
                            last_claim_tombstones_skipped_.load()};
}

absl::StatusOr<internal::SeekCost> ReferralStoreImpl::NaiveHeadSeekCost(
    std::string_view queue) {
  const std::string prefix = keys::NamePrefix(queue);
  const std::string end = keys::NamePrefixEnd(queue);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions read;
  read.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(kReady)));
  const rocksdb::PerfLevel previous = rocksdb::GetPerfLevel();
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::get_perf_context()->Reset();
  it->Seek(prefix);
  internal::SeekCost cost{
      rocksdb::get_perf_context()->internal_key_skipped_count,
      rocksdb::get_perf_context()->internal_delete_skipped_count};
  rocksdb::SetPerfLevel(previous);
  if (!it->status().ok()) return FromRocksStatus(it->status(), "read");
  return cost;
}

void ReferralStoreImpl::FailNextWrite(internal::WriteFailure failure) {
  injected_write_failure_.store(1 + static_cast<int>(failure));
}

void ReferralStoreImpl::HangNextResume(absl::Duration limit) {
  absl::MutexLock lock(&recovery_mu_);
  resume_limit_ = limit;
  hang_next_resume_.store(true);
}

namespace internal {
namespace {

class SnapshotPin final : public PinnedState {
 public:
  explicit SnapshotPin(std::shared_ptr<const rocksdb::Snapshot> snapshot)
      : snapshot_(std::move(snapshot)) {}

 private:
  std::shared_ptr<const rocksdb::Snapshot> snapshot_;
};

// Every ReferralStore comes from ReferralStore::Open, which only makes
// ReferralStoreImpl.
ReferralStoreImpl& Impl(ReferralStore& store) {
  return static_cast<ReferralStoreImpl&>(store);
}

}  // namespace

SeekCost LastClaimSeekCost(ReferralStore& store) {
  return Impl(store).last_claim_seek_cost();
}

absl::StatusOr<SeekCost> NaiveHeadSeekCost(ReferralStore& store,
                                           std::string_view queue) {
  return Impl(store).NaiveHeadSeekCost(queue);
}

void FailNextWrite(ReferralStore& store, WriteFailure failure) {
  Impl(store).FailNextWrite(failure);
}

void HangNextResume(ReferralStore& store, absl::Duration limit) {
  Impl(store).HangNextResume(limit);
}

std::unique_ptr<PinnedState> PinCurrentState(ReferralStore& store) {
  return std::make_unique<SnapshotPin>(Impl(store).NewSnapshot());
}

}  // namespace internal
// --- Audit reads. ----------------------------------------------------------

namespace {
constexpr int kMaxAuditExport = 100000;
}  // namespace

absl::StatusOr<std::vector<AuditRecord>> ReferralStoreImpl::ExportAudit(
    absl::Time from, absl::Time to, int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit: must be positive");
  if (from > to) return absl::InvalidArgumentError("from: after to");
  limit = std::min(limit, kMaxAuditExport);
  const int64_t from_us = absl::ToUnixMicros(from);
  const int64_t to_us = absl::ToUnixMicros(to);
  std::shared_ptr<const rocksdb::Snapshot> snapshot = CurrentSnapshot();
  rocksdb::ReadOptions read;
  read.snapshot = snapshot.get();
  read.fill_cache = false;
  // Keys are in sequence order, not time order (a clock may step back), so
  // the whole trail is scanned: exports are rare admin reads.
  std::vector<AuditRecord> records;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(kAudit)));
  for (it->SeekToFirst();
       it->Valid() && records.size() < static_cast<size_t>(limit); it->Next()) {
    AuditRecord record;
    if (!record.ParseFromArray(it->value().data(),
                               static_cast<int>(it->value().size()))) {
      return absl::DataLossError("audit: a record is unreadable");
    }
    if (record.at_us() < from_us || record.at_us() > to_us) continue;
    records.push_back(std::move(record));
  }
  if (!it->status().ok()) return FromRocksStatus(it->status(), "audit read");
  return records;
}

absl::StatusOr<AuditVerification> ReferralStoreImpl::VerifyAudit() {
  std::shared_ptr<const rocksdb::Snapshot> snapshot = CurrentSnapshot();
  rocksdb::ReadOptions read;
  read.snapshot = snapshot.get();
  read.fill_cache = false;
  AuditVerification result;
  uint64_t expected_seq = 1;
  std::string previous_hash;
  auto bad = [&](uint64_t seq, std::string problem) {
    result.intact = false;
    result.first_bad_seq = seq;
    result.problem = std::move(problem);
    return result;
  };
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(kAudit)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::optional<uint64_t> seq =
        audit::DecodeAuditKey(it->key().ToStringView());
    if (!seq) return bad(expected_seq, "unreadable audit key");
    // A removed record leaves a gap (or, when renumbered, a previous_hash
    // that no longer matches).
    if (*seq != expected_seq) {
      return bad(expected_seq,
                 absl::StrCat("record ", expected_seq, " is missing"));
    }
    AuditRecord record;
    if (!record.ParseFromArray(it->value().data(),
                               static_cast<int>(it->value().size()))) {
      return bad(*seq, "unreadable record");
    }
    if (record.seq() != *seq) {
      return bad(*seq, "record sequence does not match its key");
    }
    if (record.previous_hash() != previous_hash) {
      return bad(*seq, "previous hash does not match the record before");
    }
    ASSIGN_OR_RETURN(std::string hash, audit::ComputeHash(record));
    if (hash != record.hash()) {
      return bad(*seq, "hash does not match the record (edited)");
    }
    ++result.records_checked;
    ++expected_seq;
    previous_hash = record.hash();
  }
  if (!it->status().ok()) return FromRocksStatus(it->status(), "audit read");
  // A truncated tail (the newest records removed) is not detectable here:
  // what remains is a whole chain. Compare the head with a copy kept
  // elsewhere to catch that.
  return result;
}

}  // namespace referral::storage
