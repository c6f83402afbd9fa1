// Specifies what the store tells operators about itself: how much disk it
// occupies, how much compaction is pending, and whether it can write; and
// that after failed writes (a full disk above all) it recovers by itself
// once writing works again, without losing or half-writing anything.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "key_codec.h"
#include "storage/audit_trail.h"
#include "storage/referral_store.h"
#include "storage/store_test_util.h"

namespace referral::storage::testing {
namespace {

using ::testing::HasSubstr;
using Failure = FaultInjectionFileSystem::Failure;

// Records every call of on_write_health_changed.
class HealthLog {
 public:
  std::function<void(const absl::Status&)> Callback() {
    return [this](const absl::Status& health) {
      absl::MutexLock lock(&mu_);
      changes_.push_back(health);
    };
  }
  std::vector<absl::Status> Changes() const {
    absl::MutexLock lock(&mu_);
    return changes_;
  }
  // Waits (bounded) until the last change reported is OK.
  bool AwaitHealthy(absl::Duration timeout) const {
    return AwaitLast([](const absl::Status& s) { return s.ok(); }, timeout);
  }
  // Waits (bounded) until the last change reported says the store must be
  // reopened.
  bool AwaitRestartNeeded(absl::Duration timeout) const {
    return AwaitLast(
        [](const absl::Status& s) {
          return absl::StrContains(s.message(), "restart the broker");
        },
        timeout);
  }

 private:
  bool AwaitLast(bool (*wanted)(const absl::Status&),
                 absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    auto reached = [this, wanted]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return !changes_.empty() && wanted(changes_.back());
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

  mutable absl::Mutex mu_;
  std::vector<absl::Status> changes_ ABSL_GUARDED_BY(mu_);
};

bool IsWriteFailure(const absl::Status& status) {
  return status.code() == absl::StatusCode::kResourceExhausted ||
         status.code() == absl::StatusCode::kUnavailable;
}

class StoreHealthTest : public StoreTest {
 protected:
  StoreOptions Options() override { return Options(dir_.path()); }
  StoreOptions Options(const std::string& path) {
    StoreOptions options = OptionsFor(path);
    options.on_write_health_changed = health_.Callback();
    return options;
  }

  using StoreTest::Submit;
  StoredReferral Submit(const std::string& key,
                        const std::string& description) {
    SubmitCommand command = MakeSubmit(key, clock_.Now());
    command.referral.set_description(description);
    return Submit(std::move(command));
  }

  absl::Status SubmitStatus(const std::string& key) {
    return CommitNow(*store_, MakeSubmit(key, clock_.Now())).status();
  }

  DiskUsage Disk() {
    return store_->GetCounts({.now = clock_.Now(), .disk = true}).disk;
  }

  HealthLog health_;  // the store is closed (TearDown) before it goes
};

// --- Statistics. -------------------------------------------------------------

TEST_F(StoreHealthTest, StatisticsMeasureTheDataDirectoryOnDisk) {
  Open();
  const DiskUsage empty = Disk();
  EXPECT_GT(empty.disk_bytes, 0);  // a new store already has its files
  EXPECT_GE(empty.pending_compaction_bytes, 0);

  // 40 referrals of 25 kB each: at least 1 MB more in the synced log.
  const std::string description(25'000, 'x');
  for (int i = 0; i < 40; ++i) Submit(absl::StrCat("k", i), description);
  const DiskUsage written = Disk();
  EXPECT_GE(written.disk_bytes - empty.disk_bytes, 1'000'000);
  EXPECT_GE(written.pending_compaction_bytes, 0);

  // What the disk holds, whoever wrote it: a file an operator left there
  // counts too.
  {
    const std::string extra = dir_.path() + "/operator-notes";
    FILE* file = std::fopen(extra.c_str(), "w");
    ASSERT_NE(file, nullptr);
    const std::string bytes(100'000, 'n');
    std::fwrite(bytes.data(), 1, bytes.size(), file);
    std::fclose(file);
  }
  EXPECT_GE(Disk().disk_bytes - written.disk_bytes, 100'000);
}

// --- Write health. -----------------------------------------------------------

TEST_F(StoreHealthTest, HealthyStoreNeverCallsTheHealthCallback) {
  Open();
  EXPECT_TRUE(store_->WriteHealth().ok());
  Submit("a");
  Submit("b");
  EXPECT_TRUE(store_->WriteHealth().ok());
  EXPECT_THAT(health_.Changes(), ::testing::IsEmpty());
}

TEST_F(StoreHealthTest, AFailedCommitMakesTheStoreUnhealthyUntilOneSucceeds) {
  Open();
  const StoredReferral first = Submit("a");

  // The write-ahead log's disk is full.
  faults_->FailNextLogAppend(Failure::kNoSpace);
  EXPECT_EQ(SubmitStatus("b").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(store_->WriteHealth().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_EQ(health_.Changes().size(), 1u);
  EXPECT_EQ(health_.Changes()[0].code(), absl::StatusCode::kResourceExhausted);

  // The next commit first shows that writing works, then goes through.
  const StoredReferral second = Submit("b");
  EXPECT_EQ(second.seq(), first.seq() + 1);  // nothing of the failure kept
  EXPECT_TRUE(store_->WriteHealth().ok());
  ASSERT_EQ(health_.Changes().size(), 2u);
  EXPECT_TRUE(health_.Changes()[1].ok());

  // Any other failure is UNAVAILABLE (here one RocksDB can resume past).
  faults_->FailNextLogAppend(Failure::kIoError);
  EXPECT_EQ(SubmitStatus("c").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->WriteHealth().code(), absl::StatusCode::kUnavailable);
  Submit("c");
  EXPECT_TRUE(store_->WriteHealth().ok());
  ASSERT_EQ(health_.Changes().size(), 4u);
  EXPECT_EQ(health_.Changes()[2].code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(health_.Changes()[3].ok());
}

TEST_F(StoreHealthTest, AnIdleStoreRecoversOnTheReapersTick) {
  StoreOptions options = Options(dir_.path());
  options.lease_check_interval = absl::Milliseconds(20);
  Open(std::move(options));
  faults_->FailNextLogAppend(Failure::kIoError);
  EXPECT_FALSE(SubmitStatus("a").ok());
  // Not WriteHealth() here: the reaper's first attempt may already have
  // restored it (it ticks every 20 ms). The callback saw both changes.
  // Nothing else is submitted: the reaper alone notices writing works.
  ASSERT_TRUE(health_.AwaitHealthy(absl::Seconds(30)));
  EXPECT_TRUE(store_->WriteHealth().ok());
  ASSERT_EQ(health_.Changes().size(), 2u);
  EXPECT_EQ(health_.Changes()[0].code(), absl::StatusCode::kUnavailable);
}

TEST_F(StoreHealthTest,
       AResumeThatNeverFinishesAsksForARestartAndLosesNothing) {
  StoreOptions options = Options(dir_.path());
  options.lease_check_interval = absl::Milliseconds(20);
  // RocksDB 7.8 can wait forever in Resume for a flush (see ResumeWithin):
  // here the flush Resume starts meets a disk that stops answering, longer
  // than the store gives Resume. The store then says it must be reopened.
  options.resume_limit = absl::Milliseconds(200);
  Open(options);
  const StoredReferral before = Submit("a");
  faults_->StallNextTableFile(absl::Seconds(5));
  faults_->FailNextLogAppend(Failure::kNoSpace);
  EXPECT_FALSE(SubmitStatus("b").ok());
  ASSERT_TRUE(health_.AwaitRestartNeeded(absl::Seconds(30)))
      << store_->WriteHealth();
  EXPECT_THAT(std::string(store_->WriteHealth().message()),
              HasSubstr("writes cannot resume in place: restart the broker"));
  // It stays so: nothing is written until the store is reopened.
  const absl::Status refused = SubmitStatus("c");
  EXPECT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.message()), HasSubstr("restart the broker"));

  // Closing cancels the resume that never finished (RocksDB then waits for
  // the stalled flush before it closes); reopening recovers.
  Close();
  Open(options);
  EXPECT_TRUE(store_->WriteHealth().ok());
  EXPECT_TRUE(store_->GetReferral(before.referral_id()).ok());
  const StoredReferral after = Submit("b");
  EXPECT_EQ(after.seq(), before.seq() + 1);
}

// --- A real full disk. -------------------------------------------------------

// A store on a small tmpfs of its own, which the test fills up.
class FullDiskTest : public StoreHealthTest {
 protected:
  void SetUp() override {
    mount_point_ = dir_.path() + "/small-disk";
    ASSERT_EQ(::mkdir(mount_point_.c_str(), 0700), 0) << std::strerror(errno);
    if (::mount("tmpfs", mount_point_.c_str(), "tmpfs", 0,
                "size=16m,mode=0700") != 0) {
      GTEST_SKIP() << "cannot mount a 16 MB tmpfs at " << mount_point_ << ": "
                   << std::strerror(errno)
                   << " (this test needs root or CAP_SYS_ADMIN)";
    }
    mounted_ = true;
  }
  void TearDown() override {
    store_.reset();
    if (mounted_ && ::umount2(mount_point_.c_str(), MNT_DETACH) != 0) {
      ADD_FAILURE() << "umount " << mount_point_ << ": "
                    << std::strerror(errno);
    }
  }

  // Writes until the filesystem refuses, in ever smaller pieces so that no
  // free page is left. Returns how much it wrote.
  int64_t FillUp(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    const std::string chunk(1 << 20, 'f');
    int64_t written = 0;
    for (size_t piece : {size_t{1} << 20, size_t{65536}, size_t{4096},
                         size_t{512}, size_t{1}}) {
      for (;;) {
        const ssize_t n = ::write(fd, chunk.data(), piece);
        if (n <= 0) break;
        written += n;
      }
    }
    EXPECT_EQ(errno, ENOSPC);
    ::fsync(fd);
    ::close(fd);
    return written;
  }

  std::string mount_point_;
  bool mounted_ = false;

  // Fills the disk under a store, then frees it: see the tests below.
  void FillAndFreeTheDisk(const std::string& key_file);
};

TEST_F(FullDiskTest, RecoversOnItsOwnOnceSpaceIsFreedAndLosesNothing) {
  FillAndFreeTheDisk("");
}

TEST_F(FullDiskTest, AnEncryptedStoreRecoversAlike) {
  const std::string key = dir_.path() + "/store.key";  // off the small disk
  WriteKeyFile(key, 'c');
  FillAndFreeTheDisk(key);
}

void FullDiskTest::FillAndFreeTheDisk(const std::string& key_file) {
  if (IsSkipped()) return;
  const std::string data = mount_point_ + "/data";
  StoreOptions options = Options(data);
  options.encryption_key_file = key_file;
  options.lease_check_interval = absl::Milliseconds(50);
  Open(options);
  ASSERT_NE(store_, nullptr);
  std::vector<StoredReferral> acknowledged;
  for (int i = 0; i < 5; ++i) {
    acknowledged.push_back(Submit(absl::StrCat("before-", i)));
  }

  const std::string filler = mount_point_ + "/filler";
  ASSERT_GT(FillUp(filler), 0);
  // Larger than any page the log may still have free.
  const std::string large(512 * 1024, 'x');
  SubmitCommand refused = MakeSubmit("refused", clock_.Now());
  refused.referral.set_description(large);
  auto failed = CommitNow(*store_, refused);
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(IsWriteFailure(failed.status())) << failed.status();
  EXPECT_TRUE(IsWriteFailure(store_->WriteHealth())) << store_->WriteHealth();
  ASSERT_FALSE(health_.Changes().empty());
  EXPECT_TRUE(IsWriteFailure(health_.Changes()[0])) << health_.Changes()[0];
  EXPECT_FALSE(health_.Changes().back().ok());
  // While the disk is full every write is refused, and nothing of the
  // refused referral can be read.
  EXPECT_FALSE(SubmitStatus("also-refused").ok());
  const std::string would_be_id =
      keys::FormatReferralId(2026, acknowledged.back().seq() + 1);
  EXPECT_EQ(store_->GetReferral(would_be_id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadyCount(kQueue), 5);

  ASSERT_EQ(::unlink(filler.c_str()), 0) << std::strerror(errno);
  ASSERT_TRUE(health_.AwaitHealthy(absl::Seconds(60)))
      << "no recovery after the disk had space again; health: "
      << store_->WriteHealth();
  EXPECT_TRUE(store_->WriteHealth().ok());

  // The refused referral was never stored: its key is free, and it takes
  // the reference it would have had.
  auto retried = CommitNow(*store_, refused);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_FALSE(retried->duplicate);
  EXPECT_EQ(retried->record.referral_id(), would_be_id);
  acknowledged.push_back(retried->record);
  acknowledged.push_back(Submit("after"));

  auto all_readable = [&] {
    for (const StoredReferral& record : acknowledged) {
      auto read = store_->GetReferral(record.referral_id());
      ASSERT_TRUE(read.ok()) << record.referral_id() << ": " << read.status();
      EXPECT_EQ(read->idempotency_key(), record.idempotency_key());
    }
    EXPECT_EQ(store_->ReadyCount(kQueue), 7);
  };
  all_readable();
  // And all of it is durable: the log written after the recovery replays.
  StoreOptions reopen = Options(data);
  reopen.encryption_key_file = key_file;
  Open(reopen);
  ASSERT_NE(store_, nullptr);
  all_readable();
  auto audit = VerifyAudit(*store_);
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_TRUE(audit->intact) << audit->problem;
}

}  // namespace
}  // namespace referral::storage::testing
