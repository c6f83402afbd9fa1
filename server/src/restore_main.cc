// referral_restore: rebuilds a broker data directory from a backup, offline.
//
//   referral_restore --backup_dir=B --list [--encryption_key_file=K]
//   referral_restore --backup_dir=B [--backup_id=N|latest] --data_dir=D
//                    [--encryption_key_file=K]
//
// Prints one line per backup listed, or one line for the restore; exits 0,
// or 1 with the reason on stderr. Refuses a data directory that exists and
// is not empty. Output names ids, paths, counts and sizes only.
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/timestamps.h"
#include "storage/backups.h"

ABSL_FLAG(std::string, backup_dir, "", "the backup directory (required)");
ABSL_FLAG(std::string, backup_id, "latest",
          "the backup to restore: its id (see --list), or latest");
ABSL_FLAG(std::string, data_dir, "",
          "the data directory to create; must not exist or be empty");
ABSL_FLAG(std::string, encryption_key_file, "",
          "the key the backups were encrypted with (the broker's key file); "
          "empty for unencrypted backups");
ABSL_FLAG(bool, list, false, "only list the backups in --backup_dir");

namespace {

using ::referral::storage::BackupInfo;
using ::referral::storage::BackupLocation;
using ::referral::storage::ListBackups;
using ::referral::storage::RestoreBackup;

int Fail(const std::string& reason) {
  std::fprintf(stderr, "referral_restore: %s\n", reason.c_str());
  return 1;
}

std::string Describe(const BackupInfo& info) {
  return absl::StrCat("created ", referral::FormatUtcSeconds(info.created_at),
                      ", ", info.file_count,
                      info.file_count == 1 ? " file, " : " files, ",
                      info.size_bytes, " bytes");
}

int List(const BackupLocation& location) {
  absl::StatusOr<std::vector<BackupInfo>> backups = ListBackups(location);
  if (!backups.ok()) return Fail(backups.status().ToString());
  if (backups->empty()) {
    std::printf("no backups in %s\n", location.backup_dir.c_str());
    return 0;
  }
  for (const BackupInfo& info : *backups) {
    std::printf("backup %u: %s\n", info.backup_id, Describe(info).c_str());
  }
  return 0;
}

int Restore(const BackupLocation& location, const std::string& backup_id,
            const std::string& data_dir) {
  if (data_dir.empty()) return Fail("--data_dir is required to restore");
  absl::StatusOr<std::vector<BackupInfo>> backups = ListBackups(location);
  if (!backups.ok()) return Fail(backups.status().ToString());
  std::optional<BackupInfo> chosen;
  if (backup_id == "latest") {
    // Resolved here rather than by RestoreBackup, so that the line printed
    // names the backup that was restored.
    if (backups->empty()) {
      return Fail(absl::StrCat("no backups in ", location.backup_dir));
    }
    chosen = backups->back();
  } else {
    uint32_t id = 0;
    if (!absl::SimpleAtoi(backup_id, &id) || id == 0) {
      return Fail(
          absl::StrCat("--backup_id: not a backup id or latest: ", backup_id));
    }
    for (const BackupInfo& info : *backups) {
      if (info.backup_id == id) chosen = info;
    }
    // Not listed (unknown, or damaged): RestoreBackup says which.
    if (!chosen) {
      absl::Status restored = RestoreBackup(location, id, data_dir);
      return Fail(restored.ok() ? "the backup vanished while restoring"
                                : restored.ToString());
    }
  }
  absl::Status restored = RestoreBackup(location, chosen->backup_id, data_dir);
  if (!restored.ok()) return Fail(restored.ToString());
  std::printf("restored backup %u (%s) into %s\n", chosen->backup_id,
              Describe(*chosen).c_str(), data_dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "rebuilds a referral broker data directory from a backup (offline).\n"
      "  referral_restore --backup_dir=B --list [--encryption_key_file=K]\n"
      "  referral_restore --backup_dir=B [--backup_id=N|latest] --data_dir=D "
      "[--encryption_key_file=K]");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    return Fail(absl::StrCat("unexpected argument: ", rest[1]));
  }
  const BackupLocation location{absl::GetFlag(FLAGS_backup_dir),
                                absl::GetFlag(FLAGS_encryption_key_file)};
  if (location.backup_dir.empty()) return Fail("--backup_dir is required");
  if (absl::GetFlag(FLAGS_list)) return List(location);
  return Restore(location, absl::GetFlag(FLAGS_backup_id),
                 absl::GetFlag(FLAGS_data_dir));
}
