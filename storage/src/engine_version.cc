#include "storage/engine_version.h"

#include <rocksdb/version.h>

#include "absl/strings/str_cat.h"

namespace referral::storage {

std::string StorageEngineVersion() {
  return absl::StrCat(ROCKSDB_MAJOR, ".", ROCKSDB_MINOR, ".", ROCKSDB_PATCH);
}

}  // namespace referral::storage
