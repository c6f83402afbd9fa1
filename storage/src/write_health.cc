// Write health: what the store does after a commit's write failed. It
// refuses commits until it has shown it can write again: a test file in the
// data directory, DB::Resume (bounded in time: RocksDB 7.8's can hang), and a
// small synced probe write. Runs on the commit thread (before a group that
// has something to write) and on the reaper thread (so an idle store
// recovers too), at most once a second.
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "key_codec.h"
#include "record_util.h"
#include "referral_store_impl.h"
#include "rocksdb/env.h"
#include "rocksdb/write_batch.h"

namespace referral::storage {

namespace {
// Appended to the health of a store that cannot recover in place.
constexpr absl::string_view kRestart =
    "; writes cannot resume in place: restart the broker";

void NotifyHealth(const StoreOptions& options, const absl::Status& health) {
  if (options.on_write_health_changed) options.on_write_health_changed(health);
}
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
    NotifyHealth(options_, status);
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
  if (s.ok()) s = ResumeWithin(options_.resume_limit);
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
    NotifyHealth(options_, health);
  }
  if (health.ok()) {
    LogWarning("writes succeed again");
    NotifyHealth(options_, health);
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
    attempt->status = db_->Resume();
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
  for (rocksdb::ColumnFamilyHandle* family : core_.families) {
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

}  // namespace referral::storage
