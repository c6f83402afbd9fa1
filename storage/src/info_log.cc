#include "info_log.h"

#include <pthread.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace referral::storage {
namespace {

// Longest line kept; RocksDB's longest lines (option dumps) are far below.
constexpr int kMaxLineBytes = 64 * 1024;
// How long after a failed write the logger waits before starting a new file.
constexpr uint64_t kRetryMicros = 10'000'000;

class StoreInfoLog final : public rocksdb::Logger {
 public:
  StoreInfoLog(rocksdb::Env* env, std::string dir)
      : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL),
        env_(env),
        dir_(std::move(dir)) {
    absl::MutexLock lock(&mu_);
    StartFile();
  }
  ~StoreInfoLog() override { Close().PermitUncheckedError(); }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    const uint64_t now = env_->NowMicros();
    std::string line = absl::StrCat(
        absl::FormatTime("%Y/%m/%d-%H:%M:%E6S ",
                         absl::FromUnixMicros(static_cast<int64_t>(now)),
                         absl::UTCTimeZone()),
        absl::Hex(static_cast<uint64_t>(pthread_self())), " ");
    va_list copy;
    va_copy(copy, ap);
    const int length = std::vsnprintf(nullptr, 0, format, copy);
    va_end(copy);
    if (length > 0) {
      const size_t start = line.size();
      line.resize(start + static_cast<size_t>(length) + 1);
      std::vsnprintf(line.data() + start, static_cast<size_t>(length) + 1,
                     format, ap);
      line.resize(start + static_cast<size_t>(length));
    }
    if (line.size() > static_cast<size_t>(kMaxLineBytes)) {
      line.resize(kMaxLineBytes);
    }
    if (line.empty() || line.back() != '\n') line.push_back('\n');

    absl::MutexLock lock(&mu_);
    if (file_ == nullptr) {
      if (now - last_failure_ < kRetryMicros) return;
      StartFile();
      if (file_ == nullptr) {
        last_failure_ = now;
        return;
      }
    }
    rocksdb::Status s = file_->Append(line);
    if (s.ok()) s = file_->Flush();
    if (!s.ok()) {
      // The file may now hold part of the line (and, encrypted, be out of
      // step with its keystream): give it up; a later line starts anew.
      file_->Close().PermitUncheckedError();
      file_.reset();
      last_failure_ = now;
    }
  }

  void Flush() override {
    absl::MutexLock lock(&mu_);
    if (file_ != nullptr) file_->Flush().PermitUncheckedError();
  }

 protected:
  rocksdb::Status CloseImpl() override {
    absl::MutexLock lock(&mu_);
    if (file_ == nullptr) return rocksdb::Status::OK();
    rocksdb::Status s = file_->Close();
    file_.reset();
    return s;
  }

 private:
  // Keeps an existing LOG as LOG.old.<microseconds> and opens a new one;
  // leaves file_ null when it cannot.
  void StartFile() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::string path = dir_ + "/LOG";
    if (env_->FileExists(path).ok()) {
      env_->RenameFile(path, absl::StrCat(path, ".old.", env_->NowMicros()))
          .PermitUncheckedError();
    }
    std::unique_ptr<rocksdb::WritableFile> file;
    if (env_->NewWritableFile(path, &file, rocksdb::EnvOptions()).ok()) {
      file_ = std::move(file);
    }
  }

  rocksdb::Env* const env_;
  const std::string dir_;
  absl::Mutex mu_;
  std::unique_ptr<rocksdb::WritableFile> file_ ABSL_GUARDED_BY(mu_);
  uint64_t last_failure_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

std::shared_ptr<rocksdb::Logger> NewStoreInfoLog(rocksdb::Env* env,
                                                 const std::string& dir) {
  return std::make_shared<StoreInfoLog>(env, dir);
}

}  // namespace referral::storage
