// RocksDB's info log ("LOG" in the data directory) for the referral store,
// written through the store's Env, so that it is encrypted whenever the
// store is.
//
// Why not RocksDB's own file logger: it writes through a WritableFileWriter,
// which remembers a failed write for good, and the RocksDB 7.8 that Debian
// ships is built with assertions, so the next line logged after one (and a
// full disk makes that certain: RocksDB logs the very error) aborts the
// process. This logger drops what it cannot write, and once the disk takes
// writes again starts a fresh file (the broken one becomes LOG.old.<time>,
// which RocksDB prunes like its own old logs).
#ifndef REFERRAL_STORAGE_SRC_INFO_LOG_H_
#define REFERRAL_STORAGE_SRC_INFO_LOG_H_

#include <memory>
#include <string>

#include "rocksdb/env.h"

namespace referral::storage {

// A logger writing `dir`/LOG through `env`, which must outlive it. An
// existing LOG is kept as LOG.old.<microseconds>, as RocksDB does.
std::shared_ptr<rocksdb::Logger> NewStoreInfoLog(rocksdb::Env* env,
                                                 const std::string& dir);

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_SRC_INFO_LOG_H_
