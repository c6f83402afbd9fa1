// ReferralStore::Open: the RocksDB options of each column family, opening
// (with the key check of an encrypted store), recovering the in-memory
// queues from their indexes, and closing cleanly.
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
//    background-error state (a hard error for a full disk or an I/O error
//    the file system marks retryable; a fatal one for other I/O errors,
//    which only reopening clears). RocksDB only applies a
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
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audit_chain.h"
#include "base/status_macros.h"
#include "encrypted_env.h"
#include "info_log.h"
#include "key_codec.h"
#include "record_util.h"
#include "referral_store_impl.h"
#include "rocksdb/cache.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/backup_engine.h"
#include "rocksdb/utilities/table_properties_collectors.h"
#include "rocksdb/write_batch.h"
#include "thread_name.h"

namespace referral::storage {
namespace {

const char* const kFamilyNames[kFamilyCount] = {
    "default",  // rocksdb::kDefaultColumnFamilyName
    "referrals",    "ready",       "arrival",  "leases",
    "dead_letters", "idempotency", "outcomes", "children",
    "decisions",    "notices",     "audit",
};

bool IsIndexFamily(int family) {
  switch (family) {
    case kReady:
    case kArrival:
    case kLeases:
    case kDeadLetters:
    case kOutcomes:
    case kDecisions:
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
  if (family == kReferrals || family == kIdempotency) {
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  }
  if (family == kChildren) {
    options.prefix_extractor = std::make_shared<ChildLinkPrefix>();
    options.memtable_prefix_bloom_size_ratio = 0.05;
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    table.whole_key_filtering = false;  // never looked up by whole key
  }
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Records are the bulk of the data; index entries are ~30 bytes each.
  options.write_buffer_size = family == kReferrals ? 32 << 20 : 8 << 20;
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

// The queue an index key names, for the scan at Open.
template <typename Decode>
auto QueueOf(Decode decode) {
  return [decode](std::string_view key,
                  std::string_view) -> std::optional<std::string> {
    auto k = decode(key);
    return k ? std::optional<std::string>(k->queue) : std::nullopt;
  };
}

}  // namespace

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
    ASSIGN_OR_RETURN(env, NewEncryptedEnvWithKey(key, options.file_system));
  } else if (std::filesystem::exists(
                 std::filesystem::path(options.path) / kKeyCheckFileName,
                 error)) {
    // Opening an encrypted store without its key would have RocksDB rotate
    // its info log and write a plaintext one before failing on the
    // ciphertext; refuse before touching anything.
    return absl::FailedPreconditionError(
        "this data directory is encrypted: an encryption key file is "
        "required to open it");
  } else if (options.file_system != nullptr) {
    env = rocksdb::NewCompositeEnv(options.file_system);
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
      core_{options_, db, std::move(families)},
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
        rocksdb::CancelAllBackgroundWork(db_.get(), /*wait=*/false);
      }
      resume_thread_.join();
    }
  }
  // Flush so the next Open replays no log; every write is already synced.
  rocksdb::FlushOptions flush;
  flush.wait = true;
  rocksdb::Status s = db_->Flush(flush, core_.families);
  if (!s.ok()) LogWarning(absl::StrCat("flush at close: ", s.ToString()));
  // A log writer that failed must not be touched again (RocksDB 7.8
  // asserts on it); every commit was synced anyway.
  if (!error_listener_->log_write_failed()) {
    s = db_->SyncWAL();
    if (!s.ok()) LogWarning(absl::StrCat("WAL sync at close: ", s.ToString()));
  }
  for (rocksdb::ColumnFamilyHandle* handle : core_.families) {
    s = db_->DestroyColumnFamilyHandle(handle);
    if (!s.ok()) LogWarning(absl::StrCat("closing a family: ", s.ToString()));
  }
  core_.families.clear();
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
      ::referral::storage::v1::AuditRecord record;
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
    auto it = state.queues.find(name);
    if (it == state.queues.end()) {
      it = state.queues.emplace(name, QueueState::Empty(name)).first;
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

  const struct {
    Family family;
    IndexHead QueueState::*head;
    std::function<std::optional<std::string>(std::string_view,
                                             std::string_view)>
        queue_of;
  } queue_indexes[] = {
      {kReady, &QueueState::ready, QueueOf(keys::DecodeReadyKey)},
      {kArrival, &QueueState::arrival, QueueOf(keys::DecodeArrivalKey)},
      {kDeadLetters, &QueueState::dead_letters,
       QueueOf(keys::DecodeDeadLetterKey)},
  };
  for (const auto& index : queue_indexes) {
    ASSIGN_OR_RETURN(auto ranges, scan(index.family, index.queue_of));
    for (auto& [name, range] : ranges) {
      queue(name).*index.head = IndexHead(range.first, range.live);
    }
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

}  // namespace referral::storage
