// A file system for the storage tests that fails or stalls chosen writes
// underneath the store (and underneath its encryption), as RocksDB's own
// tests do with their FaultInjectionTestFS: the store's production code runs
// unchanged and meets the failure where a real disk would put it. Given to
// the store through StoreOptions::file_system.
#ifndef REFERRAL_TESTS_STORAGE_FAULT_INJECTION_FS_H_
#define REFERRAL_TESTS_STORAGE_FAULT_INJECTION_FS_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "rocksdb/file_system.h"
#include "rocksdb/io_status.h"

namespace referral::storage::testing {

class FaultInjectionFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  enum class Failure {
    // A full disk.
    kNoSpace,
    // An I/O error the file system reports as retryable (a transient fault,
    // such as a network disk's timeout): RocksDB can resume past it, unlike
    // an unqualified I/O error on its log, which it treats as fatal.
    kIoError,
  };

  static std::shared_ptr<FaultInjectionFileSystem> Create() {
    return std::make_shared<FaultInjectionFileSystem>();
  }
  FaultInjectionFileSystem()
      : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  ~FaultInjectionFileSystem() override { EndStall(); }

  static const char* kClassName() { return "ReferralFaultInjectionFS"; }
  const char* Name() const override { return kClassName(); }

  // The next append to a write-ahead log (a group commit's synced write)
  // fails, once, having written nothing.
  void FailNextLogAppend(Failure failure) {
    absl::MutexLock lock(&state_->mu);
    state_->log_failure = failure;
  }

  // The next table file to be created (a flush, such as the one DB::Resume
  // starts and waits for) stalls at its creation for `duration`, or until
  // EndStall: a disk that stops answering, which RocksDB 7.8's Resume waits
  // for without end.
  void StallNextTableFile(absl::Duration duration) {
    absl::MutexLock lock(&state_->mu);
    state_->stall_armed = true;
    state_->stall_ended = false;
    state_->stall = duration;
  }
  void EndStall() {
    absl::MutexLock lock(&state_->mu);
    state_->stall_ended = true;
  }

  rocksdb::IOStatus NewWritableFile(
      const std::string& fname, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    if (absl::EndsWith(fname, ".sst")) state_->MaybeStall();
    rocksdb::IOStatus s =
        target()->NewWritableFile(fname, options, result, dbg);
    if (s.ok() && absl::EndsWith(fname, ".log")) {
      *result = std::make_unique<LogFile>(std::move(*result), state_);
    }
    return s;
  }

 private:
  // Shared with the files it hands out, which may outlive a reference to
  // the file system itself.
  struct State {
    absl::Mutex mu;
    std::optional<Failure> log_failure ABSL_GUARDED_BY(mu);
    bool stall_armed ABSL_GUARDED_BY(mu) = false;
    bool stall_ended ABSL_GUARDED_BY(mu) = false;
    absl::Duration stall ABSL_GUARDED_BY(mu);

    // The armed failure, once; OK when none is armed.
    rocksdb::IOStatus TakeLogFailure() {
      absl::MutexLock lock(&mu);
      if (!log_failure.has_value()) return rocksdb::IOStatus::OK();
      const Failure failure = *log_failure;
      log_failure.reset();
      if (failure == Failure::kNoSpace) {
        return rocksdb::IOStatus::NoSpace("injected by a test");
      }
      rocksdb::IOStatus error =
          rocksdb::IOStatus::IOError("injected by a test");
      error.SetRetryable(true);
      return error;
    }
    void MaybeStall() {
      absl::MutexLock lock(&mu);
      if (!stall_armed) return;
      stall_armed = false;
      mu.AwaitWithTimeout(absl::Condition(&stall_ended), stall);
    }
  };

  class LogFile final : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    LogFile(std::unique_ptr<rocksdb::FSWritableFile> file,
            std::shared_ptr<State> state)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(file)),
          state_(std::move(state)) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      rocksdb::IOStatus s = state_->TakeLogFailure();
      return s.ok() ? FSWritableFileOwnerWrapper::Append(data, options, dbg)
                    : s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data,
                             const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      rocksdb::IOStatus s = state_->TakeLogFailure();
      return s.ok()
                 ? FSWritableFileOwnerWrapper::Append(data, options, info, dbg)
                 : s;
    }

   private:
    std::shared_ptr<State> state_;
  };

  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace referral::storage::testing

#endif  // REFERRAL_TESTS_STORAGE_FAULT_INJECTION_FS_H_
