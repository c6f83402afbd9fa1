// Backups of a referral store: listing, verifying and restoring them need no
// open store (the restore tool runs with the broker stopped); taking one is
// ReferralStore::CreateBackup.
#ifndef REFERRAL_STORAGE_BACKUPS_H_
#define REFERRAL_STORAGE_BACKUPS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace referral::storage {

// One backup in a backup directory.
struct BackupInfo {
  uint32_t backup_id = 0;  // 1, 2, ... in order of creation
  absl::Time created_at;   // whole seconds
  // What the backup holds (its files before any encryption overhead; files
  // shared with other backups count in each).
  int64_t size_bytes = 0;
  int32_t file_count = 0;
};

// A backup directory and the key its backups are encrypted with (empty for
// a store without encryption at rest). A directory holds backups of one
// kind only: encrypted ones carry a KEYCHECK file for their key, and are
// refused without it or with another key.
struct BackupLocation {
  std::string backup_dir;
  std::string encryption_key_file;
};

// The backups in a directory, oldest first (empty when the directory does
// not exist). Safe while a broker writes to the same directory.
// FAILED_PRECONDITION when the key does not fit the directory (missing,
// wrong, or given for unencrypted backups).
absl::StatusOr<std::vector<BackupInfo>> ListBackups(
    const BackupLocation& location);

// Reads a whole backup back and checks every file against the checksum
// taken when it was written. NOT_FOUND for an unknown id; DATA_LOSS naming
// the first damaged or missing file.
absl::StatusOr<BackupInfo> VerifyBackup(const BackupLocation& location,
                                        uint32_t backup_id);

// Rebuilds a data directory from a backup (nullopt: the latest), for
// ReferralStore::Open with the same key file. Offline: `data_dir` must not
// exist or be empty (FAILED_PRECONDITION otherwise), and is left as it was
// when the restore fails. Every file is checked against its checksum as it
// is copied (DATA_LOSS if one does not match).
absl::Status RestoreBackup(const BackupLocation& location,
                           std::optional<uint32_t> backup_id,
                           const std::string& data_dir);

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_BACKUPS_H_
