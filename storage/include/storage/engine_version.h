// The version of the storage engine the store runs on, for the broker's
// build information (metrics, logs), without exposing RocksDB's headers.
#ifndef REFERRAL_STORAGE_ENGINE_VERSION_H_
#define REFERRAL_STORAGE_ENGINE_VERSION_H_

#include <string>

namespace referral::storage {

// RocksDB's version, e.g. "7.8.3".
std::string StorageEngineVersion();

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_ENGINE_VERSION_H_
