// Online backups of the referral store and their listing, verification and
// restore, on RocksDB's BackupEngine.
//
// Choices:
//  - Consistency without stopping writes: the backup copies the live table
//    files and the write-ahead log up to its size when the backup starts
//    (flush_before_backup = false). Every commit is synced to that log
//    before its `done` runs, so everything acknowledged before CreateBackup
//    was called is in the copied log, and a restore replays it. No flush is
//    forced, so a backup never adds a memtable switch to the commit path;
//    BackupEngine keeps file deletions off while it copies.
//  - One backup at a time, on the store's backup thread; a second request
//    while one runs is refused (ABORTED) rather than queued: a backup taken
//    right after another adds nothing, and queued admin requests would only
//    pile up behind a slow disk.
//  - Encryption: with a key, BackupEngine reads the database through the
//    store's encrypted Env (so it sees, and checksums, the plaintext) and
//    writes every backup file, its metadata included, through an encrypted
//    Env with the same key (new random prefixes, so ciphertexts differ from
//    the data directory's). Nothing readable reaches the backup directory.
//    The directory gets its own KEYCHECK, so listing, verifying or
//    restoring with a missing or wrong key fails clearly before any file is
//    read, and an unencrypted store cannot add plaintext backups to it.
//  - Checksums: BackupEngine records a crc32c of every file's contents as
//    it copies; VerifyBackup re-reads everything against them, and a
//    restore checks each file as it copies it.
#include "storage/backups.h"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
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
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "encrypted_env.h"
#include "record_util.h"
#include "referral_store_impl.h"
#include "rocksdb/env.h"
#include "rocksdb/utilities/backup_engine.h"

namespace referral::storage {
namespace {

namespace fs = std::filesystem;

// A RocksDB status from BackupEngine as an absl::Status. RocksDB's messages
// name files, sizes and checksums, never record content.
absl::Status FromBackupStatus(const rocksdb::Status& status,
                              std::string_view what) {
  const std::string message =
      absl::StrCat(std::string(what), ": ", status.ToString());
  if (status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsNoSpace()) return absl::ResourceExhaustedError(message);
  return absl::UnavailableError(message);
}

// The directory as an absolute path with symlinks and ".." resolved (as far
// as it exists), for comparing locations.
absl::StatusOr<fs::path> Resolved(const std::string& dir) {
  std::error_code error;
  fs::path path = fs::weakly_canonical(fs::absolute(dir), error);
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": cannot resolve path: ", error.message()));
  }
  if (!path.has_filename()) path = path.parent_path();  // "/b/" -> "/b"
  return path;
}

bool IsWithin(const fs::path& inner, const fs::path& outer) {
  const fs::path relative = inner.lexically_relative(outer);
  return !relative.empty() && *relative.begin() != "..";
}

// Backups and the data directory must not contain each other: a backup
// inside the data directory would be copied into the next backup (and
// deleted with the directory), and a data directory inside the backup
// directory would be taken for backup files.
absl::Status CheckSeparate(const std::string& backup_dir,
                           const std::string& data_dir) {
  ASSIGN_OR_RETURN(fs::path backups, Resolved(backup_dir));
  ASSIGN_OR_RETURN(fs::path data, Resolved(data_dir));
  if (IsWithin(backups, data) || IsWithin(data, backups)) {
    return absl::InvalidArgumentError(
        absl::StrCat("backup directory ", backup_dir, " and data directory ",
                     data_dir, " must be separate (neither inside the other)"));
  }
  return absl::OkStatus();
}

bool Exists(const fs::path& path) {
  std::error_code error;
  return fs::exists(path, error) && !error;
}

bool HasKeyCheck(const std::string& backup_dir) {
  return Exists(fs::path(backup_dir) / kKeyCheckFileName);
}

// Whether BackupEngine has recorded any backup here.
bool HoldsBackups(const std::string& backup_dir) {
  std::error_code error;
  const fs::path meta = fs::path(backup_dir) / "meta";
  return fs::is_directory(meta, error) && !error &&
         !fs::is_empty(meta, error) && !error;
}

// Creates a missing directory readable by its owner only: backups and data
// directories hold personal data.
absl::Status CreatePrivateDirectory(const std::string& dir) {
  std::error_code error;
  if (fs::exists(dir, error)) return absl::OkStatus();
  fs::create_directories(dir, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, ": cannot create: ", error.message()));
  }
  ::chmod(dir.c_str(), 0700);
  return absl::OkStatus();
}

// The Env backup files are read and written through: the default one, or
// an encrypted one for the location's key.
struct BackupEnv {
  std::unique_ptr<rocksdb::Env> encrypted;  // null: no encryption
  rocksdb::Env* get() const {
    return encrypted != nullptr ? encrypted.get() : rocksdb::Env::Default();
  }
};

// Checks the location's key against the directory's KEYCHECK (writing one
// for a directory that holds no backups yet when `may_create`), and makes
// the matching Env.
absl::StatusOr<BackupEnv> OpenBackupEnv(const BackupLocation& location,
                                        bool may_create) {
  const std::string& dir = location.backup_dir;
  if (location.encryption_key_file.empty()) {
    if (HasKeyCheck(dir)) {
      return absl::FailedPreconditionError(
          absl::StrCat("the backups in ", dir,
                       " are encrypted: an encryption key file is required"));
    }
    return BackupEnv{};
  }
  ASSIGN_OR_RETURN(std::string key, ReadKeyFile(location.encryption_key_file));
  auto wipe = [&key] {
    OPENSSL_cleanse(key.data(), key.size());
    key.clear();
  };
  absl::Status checked =
      CheckKeyFileOutsideDataDir(location.encryption_key_file, dir);
  if (checked.ok() && !HasKeyCheck(dir) && (!may_create || HoldsBackups(dir))) {
    checked = absl::FailedPreconditionError(
        absl::StrCat("the backups in ", dir,
                     " are not encrypted (no KEYCHECK file), but an "
                     "encryption key file was given"));
  }
  // Verifies an existing KEYCHECK; writes one only where allowed above.
  if (checked.ok()) {
    checked = CheckOrCreateKeyCheck(dir, key);
    if (absl::IsFailedPrecondition(checked) &&
        absl::StrContains(checked.message(), "does not match")) {
      checked = absl::FailedPreconditionError(
          absl::StrCat("the encryption key does not match the backups in ", dir,
                       ": give the key file of the broker that made them"));
    }
  }
  if (!checked.ok()) {
    wipe();
    return checked;
  }
  absl::StatusOr<std::unique_ptr<rocksdb::Env>> env =
      NewEncryptedEnvWithKey(key);
  wipe();
  if (!env.ok()) return env.status();
  return BackupEnv{*std::move(env)};
}

absl::StatusOr<std::unique_ptr<rocksdb::BackupEngineReadOnly>> OpenReader(
    const std::string& backup_dir, rocksdb::Env* env) {
  rocksdb::BackupEngineOptions options(backup_dir, env);
  rocksdb::BackupEngineReadOnly* engine = nullptr;
  rocksdb::IOStatus s =
      rocksdb::BackupEngineReadOnly::Open(options, env, &engine);
  if (!s.ok()) return FromBackupStatus(s, "opening the backups");
  return std::unique_ptr<rocksdb::BackupEngineReadOnly>(engine);
}

BackupInfo ToBackupInfo(const rocksdb::BackupInfo& info) {
  BackupInfo out;
  out.backup_id = info.backup_id;
  out.created_at = absl::FromUnixSeconds(info.timestamp);
  out.size_bytes = static_cast<int64_t>(info.size);
  out.file_count = static_cast<int32_t>(info.number_files);
  return out;
}

bool IsCorrupt(const rocksdb::BackupEngineReadOnlyBase& engine,
               uint32_t backup_id) {
  std::vector<rocksdb::BackupID> corrupt;
  engine.GetCorruptedBackups(&corrupt);
  return std::find(corrupt.begin(), corrupt.end(), backup_id) != corrupt.end();
}

// The backup `backup_id`, or the latest intact one.
absl::StatusOr<rocksdb::BackupInfo> FindBackup(
    const rocksdb::BackupEngineReadOnlyBase& engine,
    const std::string& backup_dir, std::optional<uint32_t> backup_id) {
  rocksdb::BackupInfo info;
  if (!backup_id.has_value()) {
    if (!engine.GetLatestBackupInfo(&info).ok()) {
      return absl::NotFoundError(
          absl::StrCat("no intact backup in ", backup_dir));
    }
    return info;
  }
  if (IsCorrupt(engine, *backup_id)) {
    return absl::DataLossError(absl::StrCat(
        "backup ", *backup_id, " is damaged: its description ", backup_dir,
        "/meta/", *backup_id, " is unreadable or names missing files"));
  }
  if (!engine.GetBackupInfo(*backup_id, &info).ok()) {
    return absl::NotFoundError(
        absl::StrCat("no backup ", *backup_id, " in ", backup_dir));
  }
  return info;
}

// Empties a directory that was empty (or absent) before a failed restore.
void RemoveRestored(const std::string& data_dir, bool created) {
  std::error_code error;
  if (created) {
    fs::remove_all(data_dir, error);
  } else {
    for (const fs::directory_entry& entry :
         fs::directory_iterator(data_dir, error)) {
      fs::remove_all(entry.path(), error);
    }
  }
  if (error) {
    LogWarning(absl::StrCat("could not remove a failed restore from ", data_dir,
                            ": ", error.message()));
  }
}

}  // namespace

// --- Listing, verifying and restoring (no store needed). -------------------

absl::StatusOr<std::vector<BackupInfo>> ListBackups(
    const BackupLocation& location) {
  if (location.backup_dir.empty()) {
    return absl::InvalidArgumentError("backup_dir: required");
  }
  std::vector<BackupInfo> backups;
  if (!HoldsBackups(location.backup_dir)) {
    // Nothing to list. A KEYCHECK left by an earlier backup must still fit
    // the key, so that a wrong key shows before it matters.
    if (HasKeyCheck(location.backup_dir)) {
      RETURN_IF_ERROR(OpenBackupEnv(location, /*may_create=*/false).status());
    }
    return backups;
  }
  ASSIGN_OR_RETURN(BackupEnv env,
                   OpenBackupEnv(location, /*may_create=*/false));
  ASSIGN_OR_RETURN(auto engine, OpenReader(location.backup_dir, env.get()));
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  for (const rocksdb::BackupInfo& info : infos) {
    backups.push_back(ToBackupInfo(info));
  }
  std::sort(backups.begin(), backups.end(),
            [](const BackupInfo& a, const BackupInfo& b) {
              return a.backup_id < b.backup_id;
            });
  std::vector<rocksdb::BackupID> corrupt;
  engine->GetCorruptedBackups(&corrupt);
  for (rocksdb::BackupID id : corrupt) {
    LogWarning(absl::StrCat("backup ", id, " in ", location.backup_dir,
                            " is damaged and not listed"));
  }
  return backups;
}

absl::StatusOr<BackupInfo> VerifyBackup(const BackupLocation& location,
                                        uint32_t backup_id) {
  if (location.backup_dir.empty()) {
    return absl::InvalidArgumentError("backup_dir: required");
  }
  if (!HoldsBackups(location.backup_dir)) {
    return absl::NotFoundError(
        absl::StrCat("no backup ", backup_id, " in ", location.backup_dir));
  }
  ASSIGN_OR_RETURN(BackupEnv env,
                   OpenBackupEnv(location, /*may_create=*/false));
  ASSIGN_OR_RETURN(auto engine, OpenReader(location.backup_dir, env.get()));
  ASSIGN_OR_RETURN(rocksdb::BackupInfo info,
                   FindBackup(*engine, location.backup_dir, backup_id));
  rocksdb::IOStatus s =
      engine->VerifyBackup(backup_id, /*verify_with_checksum=*/true);
  if (!s.ok()) {
    // "File missing: <path>", "File corrupted: Checksum mismatch for
    // <path>...": RocksDB names the first bad file.
    const std::string message =
        absl::StrCat("backup ", backup_id, " is damaged: ", s.ToString());
    if (s.IsCorruption() || s.IsNotFound() || s.IsPathNotFound()) {
      return absl::DataLossError(message);
    }
    return absl::UnavailableError(message);
  }
  return ToBackupInfo(info);
}

absl::Status RestoreBackup(const BackupLocation& location,
                           std::optional<uint32_t> backup_id,
                           const std::string& data_dir) {
  if (location.backup_dir.empty()) {
    return absl::InvalidArgumentError("backup_dir: required");
  }
  if (data_dir.empty()) {
    return absl::InvalidArgumentError("data_dir: required");
  }
  // Never over anything: a restore merged into an existing store would be
  // neither the one nor the other.
  std::error_code error;
  const bool existed = fs::exists(data_dir, error);
  if (existed) {
    if (!fs::is_directory(data_dir, error)) {
      return absl::FailedPreconditionError(
          absl::StrCat(data_dir, " exists and is not a directory"));
    }
    if (!fs::is_empty(data_dir, error) || error) {
      return absl::FailedPreconditionError(absl::StrCat(
          data_dir,
          " is not empty: restore only into a new or empty directory"));
    }
  }
  RETURN_IF_ERROR(CheckSeparate(location.backup_dir, data_dir));
  if (!location.encryption_key_file.empty()) {
    RETURN_IF_ERROR(
        CheckKeyFileOutsideDataDir(location.encryption_key_file, data_dir));
  }
  if (!HoldsBackups(location.backup_dir)) {
    return absl::NotFoundError(
        absl::StrCat("no backups in ", location.backup_dir));
  }
  ASSIGN_OR_RETURN(BackupEnv env,
                   OpenBackupEnv(location, /*may_create=*/false));
  ASSIGN_OR_RETURN(auto engine, OpenReader(location.backup_dir, env.get()));
  ASSIGN_OR_RETURN(rocksdb::BackupInfo info,
                   FindBackup(*engine, location.backup_dir, backup_id));

  RETURN_IF_ERROR(CreatePrivateDirectory(data_dir));
  // The database files are written through the same Env, so an encrypted
  // backup is restored encrypted with the same key.
  rocksdb::IOStatus s = engine->RestoreDBFromBackup(
      rocksdb::RestoreOptions(), info.backup_id, data_dir, data_dir);
  if (!s.ok()) {
    absl::Status failed =
        FromBackupStatus(s, absl::StrCat("restoring backup ", info.backup_id));
    if (s.IsCorruption()) {
      // RocksDB 7.8's restore error leaves out the file; verifying names it.
      rocksdb::IOStatus verified =
          engine->VerifyBackup(info.backup_id, /*verify_with_checksum=*/true);
      if (!verified.ok()) {
        failed = absl::DataLossError(absl::StrCat(
            "backup ", info.backup_id, " is damaged: ", verified.ToString()));
      }
    }
    // A failed restore may leave copies in flight; closing the engine
    // waits for them, so that nothing lands after the clean-up.
    engine.reset();
    RemoveRestored(data_dir, !existed);
    return failed;
  }
  engine.reset();
  if (!location.encryption_key_file.empty()) {
    // A KEYCHECK for the restored directory, written only after its CURRENT
    // file has decrypted with this key.
    ASSIGN_OR_RETURN(std::string key,
                     ReadKeyFile(location.encryption_key_file));
    absl::Status checked = CheckOrCreateKeyCheck(data_dir, key);
    OPENSSL_cleanse(key.data(), key.size());
    if (!checked.ok()) {
      RemoveRestored(data_dir, !existed);
      return checked;
    }
  }
  return absl::OkStatus();
}

// --- Taking backups (the store's backup thread). ---------------------------

void ReferralStoreImpl::CreateBackup(std::string backup_dir,
                                     Done<BackupInfo> done) {
  absl::Status refused;
  {
    absl::MutexLock lock(&backup_mu_);
    if (backup_stop_) {
      refused = absl::UnavailableError("the referral store is closing");
    } else if (backup_busy_) {
      refused = absl::AbortedError(
          "a backup is already running: try again when it has finished");
    } else {
      backup_busy_ = true;
      backup_request_ = BackupRequest{std::move(backup_dir), std::move(done)};
      return;
    }
  }
  std::move(done)(refused);
}

void ReferralStoreImpl::BackupLoop() {
  for (;;) {
    std::optional<BackupRequest> request;
    {
      absl::MutexLock lock(&backup_mu_);
      backup_mu_.Await(absl::Condition(
          +[](ReferralStoreImpl* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return self->backup_request_.has_value() || self->backup_stop_;
          },
          this));
      if (!backup_request_.has_value()) return;  // stopping, nothing asked
      request = std::move(backup_request_);
      backup_request_.reset();
    }
    absl::StatusOr<BackupInfo> result = RunBackup(request->backup_dir);
    {
      // Free before `done` runs, so that it may ask for the next backup.
      absl::MutexLock lock(&backup_mu_);
      backup_busy_ = false;
    }
    std::move(request->done)(std::move(result));
  }
}

absl::StatusOr<BackupInfo> ReferralStoreImpl::RunBackup(
    const std::string& backup_dir) {
  if (backup_dir.empty()) {
    return absl::InvalidArgumentError("backup_dir: required");
  }
  RETURN_IF_ERROR(CheckSeparate(backup_dir, options_.path));
  RETURN_IF_ERROR(CreatePrivateDirectory(backup_dir));
  const BackupLocation location{backup_dir, options_.encryption_key_file};
  if (!location.encryption_key_file.empty()) {
    // The backup files are encrypted with the key file's key: make sure it
    // is still the key this store was opened with.
    ASSIGN_OR_RETURN(std::string key,
                     ReadKeyFile(location.encryption_key_file));
    absl::Status same = CheckOrCreateKeyCheck(options_.path, key);
    OPENSSL_cleanse(key.data(), key.size());
    RETURN_IF_ERROR(same);
  }
  ASSIGN_OR_RETURN(BackupEnv backup_env,
                   OpenBackupEnv(location, /*may_create=*/true));
  // The database is read through the store's own Env (decrypting what it
  // encrypted).
  rocksdb::Env* db_env = env_ != nullptr ? env_.get() : rocksdb::Env::Default();
  rocksdb::BackupEngineOptions engine_options(backup_dir, backup_env.get());
  rocksdb::BackupEngine* raw = nullptr;
  rocksdb::IOStatus s =
      rocksdb::BackupEngine::Open(engine_options, db_env, &raw);
  if (!s.ok()) return FromBackupStatus(s, "opening the backup directory");
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  {
    absl::MutexLock lock(&backup_mu_);
    if (backup_stop_) {
      return absl::UnavailableError(
          "the referral store is closing: no backup taken");
    }
    backup_engine_ = engine.get();
  }
  rocksdb::CreateBackupOptions create;
  create.flush_before_backup = false;  // the synced log is copied instead
  rocksdb::BackupID backup_id = 0;
  s = engine->CreateNewBackup(create, db_.get(), &backup_id);
  {
    absl::MutexLock lock(&backup_mu_);
    backup_engine_ = nullptr;
  }
  if (s.IsIncomplete()) {
    return absl::UnavailableError(
        "backup stopped: the referral store is closing");
  }
  if (!s.ok()) return FromBackupStatus(s, "backup");
  rocksdb::BackupInfo info;
  rocksdb::Status found = engine->GetBackupInfo(backup_id, &info);
  if (!found.ok()) return FromBackupStatus(found, "reading the new backup");
  return ToBackupInfo(info);
}

}  // namespace referral::storage
