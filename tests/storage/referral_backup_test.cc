// Specifies the store's backups: an online backup holds everything
// acknowledged before it was asked for, even while referrals keep arriving;
// backups are listed and verified against their checksums (a damaged file is
// named); a restore rebuilds a data directory that opens with its referrals,
// queues, leases and audit chain, and never writes over anything; and an
// encrypted store's backups stay encrypted and need the same key.
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "key_codec.h"
#include "storage/audit_trail.h"
#include "storage/backups.h"
#include "storage/referral_store.h"
#include "storage/store_test_util.h"

namespace referral::storage::testing {
namespace {

namespace fs = std::filesystem;

using ::testing::ElementsAre;
using ::testing::HasSubstr;
// Fictitious, and distinctive enough that finding it in a file can only
// mean the plaintext leaked.
constexpr char kDistinctive[] = "Marzipan-Okapi-Tuesday-7731";

absl::StatusOr<BackupInfo> CreateBackupNow(ReferralStore& store,
                                           const std::string& backup_dir) {
  return Await<BackupInfo>([&](Done<BackupInfo> done) {
    store.CreateBackup(backup_dir, std::move(done));
  });
}

std::vector<fs::path> FilesUnder(const std::string& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  return files;
}

// Agencies submitting from their own threads until stopped (or destroyed).
class Agencies {
 public:
  Agencies(ReferralStore& store, FakeClock& clock, int threads) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, &store, &clock, t] {
        for (int i = 0; !stop_.load(); ++i) {
          auto result =
              CommitNow(store, MakeSubmit(absl::StrCat("live-", t, "-", i),
                                          clock.Now(), kQueue));
          if (!result.ok()) continue;
          absl::MutexLock lock(&mu_);
          acknowledged_.push_back(result->record.referral_id());
        }
      });
    }
  }
  ~Agencies() { Stop(); }

  bool AwaitAcknowledged(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return acknowledged_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  // The referrals whose submission has been acknowledged so far.
  std::vector<std::string> Acknowledged() {
    absl::MutexLock lock(&mu_);
    return acknowledged_;
  }
  // Stops and joins the threads; returns how many were acknowledged.
  size_t Stop() {
    stop_.store(true);
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
    return Acknowledged().size();
  }

 private:
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::vector<std::string> acknowledged_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

class ReferralBackupTest : public StoreTest {
 protected:
  ReferralBackupTest()
      : data_dir_(dir_.path() + "/data"),
        backup_dir_(dir_.path() + "/backups"),
        restore_dir_(dir_.path() + "/restored"),
        key_(dir_.path() + "/keys/broker.key"),
        other_key_(dir_.path() + "/keys/other.key") {
    fs::create_directories(dir_.path() + "/keys");
    WriteKeyFile(key_, 'a');
    WriteKeyFile(other_key_, 'b');
  }

  StoreOptions Options(const std::string& path,
                       const std::string& key_file = "") {
    StoreOptions options = OptionsFor(path);
    options.encryption_key_file = key_file;
    return options;
  }

  std::unique_ptr<ReferralStore> OpenStore(StoreOptions options) {
    auto store = ReferralStore::Open(std::move(options));
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  StoredReferral Submit(ReferralStore& store, const std::string& key,
                        const std::string& description = "Concern.") {
    SubmitCommand command = MakeSubmit(key, clock_.Now());
    command.referral.set_description(description);
    auto result = CommitNow(store, std::move(command));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->record : StoredReferral();
  }

  std::vector<StoredReferral> Claim(ReferralStore& store, int max) {
    auto claimed = CommitNow(store, MakeClaim(max));
    EXPECT_TRUE(claimed.ok()) << claimed.status();
    return claimed.ok() ? *claimed : std::vector<StoredReferral>();
  }

  BackupLocation Location(const std::string& key_file = "") const {
    return BackupLocation{backup_dir_, key_file};
  }

  const std::string data_dir_;
  const std::string backup_dir_;
  const std::string restore_dir_;
  const std::string key_;
  const std::string other_key_;
};

TEST_F(ReferralBackupTest,
       BackupWhileReferralsArriveHoldsEverythingAcknowledgedBeforeIt) {
  std::unique_ptr<ReferralStore> store = OpenStore(Options(data_dir_));
  ASSERT_NE(store, nullptr);
  // Referrals in every state: queued, claimed (with a lease), decided,
  // released back to the queue.
  for (int i = 0; i < 20; ++i) Submit(*store, absl::StrCat("early-", i));
  const std::vector<StoredReferral> claimed = Claim(*store, 4);
  ASSERT_EQ(claimed.size(), 4u);
  ASSERT_TRUE(CommitNow(*store, MakeDecide(claimed[0])).ok());
  ASSERT_TRUE(CommitNow(*store, ReleaseCommand{claimed[1].referral_id(),
                                               claimed[1].lease().token(),
                                               "handover", "triage:worker-1"})
                  .ok());

  // Agencies keep submitting from several threads throughout.
  Agencies agencies(*store, clock_, 3);
  ASSERT_TRUE(agencies.AwaitAcknowledged(60, absl::Seconds(60)));

  // What the backup must hold: every referral acknowledged by now, as it is
  // now (the agencies only add referrals; nothing else changes them).
  std::vector<StoredReferral> expected;
  for (uint64_t seq = 1; seq <= 20; ++seq) {
    auto record = store->GetReferral(keys::FormatReferralId(2026, seq));
    ASSERT_TRUE(record.ok()) << record.status();
    expected.push_back(*record);
  }
  for (const std::string& id : agencies.Acknowledged()) {
    auto record = store->GetReferral(id);
    ASSERT_TRUE(record.ok()) << id << ": " << record.status();
    expected.push_back(*record);
  }
  auto audit_before = VerifyAudit(*store);
  ASSERT_TRUE(audit_before.ok());

  auto backup = CreateBackupNow(*store, backup_dir_);
  EXPECT_GT(agencies.Stop(), expected.size() - 20);  // kept on meanwhile
  ASSERT_TRUE(backup.ok()) << backup.status();
  EXPECT_EQ(backup->backup_id, 1u);
  EXPECT_GT(backup->file_count, 0);
  EXPECT_GT(backup->size_bytes, 0);

  auto listed = ListBackups(Location());
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].backup_id, backup->backup_id);
  EXPECT_EQ((*listed)[0].created_at, backup->created_at);
  auto verified = VerifyBackup(Location(), backup->backup_id);
  ASSERT_TRUE(verified.ok()) << verified.status();

  ASSERT_TRUE(RestoreBackup(Location(), std::nullopt, restore_dir_).ok());
  std::unique_ptr<ReferralStore> restored = OpenStore(Options(restore_dir_));
  ASSERT_NE(restored, nullptr);
  for (const StoredReferral& record : expected) {
    auto read = restored->GetReferral(record.referral_id());
    ASSERT_TRUE(read.ok()) << record.referral_id() << ": " << read.status();
    EXPECT_EQ(read->SerializeAsString(), record.SerializeAsString())
        << record.referral_id();
  }
  // Leases survive: the still-claimed referrals are claimed, with the
  // tokens their workers hold.
  for (int i : {2, 3}) {
    auto read = restored->GetReferral(claimed[i].referral_id());
    ASSERT_TRUE(read.ok());
    EXPECT_EQ(read->state(), ::referral::v1::REFERRAL_STATE_CLAIMED);
    EXPECT_EQ(read->lease().token(), claimed[i].lease().token());
  }
  // The queue goes on where it was: the released referral is next.
  const std::vector<StoredReferral> next = Claim(*restored, 1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].referral_id(), claimed[1].referral_id());
  // The audit chain is whole, and holds at least what it held before.
  auto audit = VerifyAudit(*restored);
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_TRUE(audit->intact) << audit->problem;
  EXPECT_GE(audit->records_checked, audit_before->records_checked);
}

TEST_F(ReferralBackupTest, BackupsAreListedInOrderAndRestoredByChoice) {
  std::unique_ptr<ReferralStore> store = OpenStore(Options(data_dir_));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(ListBackups(Location())->empty());
  for (int i = 0; i < 3; ++i) Submit(*store, absl::StrCat("a", i));
  const absl::Time before = absl::Now();
  auto first = CreateBackupNow(*store, backup_dir_);
  ASSERT_TRUE(first.ok()) << first.status();
  for (int i = 0; i < 2; ++i) Submit(*store, absl::StrCat("b", i));
  auto second = CreateBackupNow(*store, backup_dir_);
  ASSERT_TRUE(second.ok()) << second.status();

  auto listed = ListBackups(Location());
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].backup_id, first->backup_id);
  EXPECT_EQ((*listed)[1].backup_id, second->backup_id);
  EXPECT_LT(first->backup_id, second->backup_id);
  EXPECT_GE((*listed)[0].created_at,
            absl::FromUnixSeconds(absl::ToUnixSeconds(before)));
  for (const BackupInfo& info : *listed) {
    EXPECT_GT(info.file_count, 0);
    EXPECT_GT(info.size_bytes, 0);
    EXPECT_TRUE(VerifyBackup(Location(), info.backup_id).ok());
  }
  EXPECT_EQ(VerifyBackup(Location(), 99).status().code(),
            absl::StatusCode::kNotFound);

  // The latest by default; an earlier one when asked.
  ASSERT_TRUE(RestoreBackup(Location(), std::nullopt, restore_dir_).ok());
  const std::string older_dir = dir_.path() + "/restored-older";
  ASSERT_TRUE(RestoreBackup(Location(), first->backup_id, older_dir).ok());
  EXPECT_EQ(OpenStore(Options(restore_dir_))->ReadyCount(kQueue), 5);
  EXPECT_EQ(OpenStore(Options(older_dir))->ReadyCount(kQueue), 3);
  EXPECT_EQ(
      RestoreBackup(Location(), 99, dir_.path() + "/restored-unknown").code(),
      absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(dir_.path() + "/restored-unknown"));
}

TEST_F(ReferralBackupTest, VerifyNamesADamagedFileAndRestoreRefusesIt) {
  std::unique_ptr<ReferralStore> store = OpenStore(Options(data_dir_));
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 50; ++i) Submit(*store, absl::StrCat("k", i));
  auto backup = CreateBackupNow(*store, backup_dir_);
  ASSERT_TRUE(backup.ok()) << backup.status();
  ASSERT_TRUE(VerifyBackup(Location(), backup->backup_id).ok());

  // Flip one byte in the middle of the largest backed-up file.
  fs::path largest;
  for (const fs::path& file : FilesUnder(backup_dir_)) {
    if (file.parent_path().filename() == "meta") continue;
    if (largest.empty() || fs::file_size(file) > fs::file_size(largest)) {
      largest = file;
    }
  }
  ASSERT_FALSE(largest.empty());
  {
    std::fstream file(largest, std::ios::in | std::ios::out | std::ios::binary);
    const std::streamoff middle =
        static_cast<std::streamoff>(fs::file_size(largest) / 2);
    file.seekg(middle);
    char byte = 0;
    file.get(byte);
    file.seekp(middle);
    file.put(static_cast<char>(byte ^ 0x5a));
  }

  auto damaged = VerifyBackup(Location(), backup->backup_id);
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(damaged.status().message(),
              HasSubstr(largest.filename().string()));
  // A restore checks every file as it copies it, and leaves nothing behind.
  const absl::Status restored =
      RestoreBackup(Location(), backup->backup_id, restore_dir_);
  EXPECT_EQ(restored.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(restored.message(), HasSubstr(largest.filename().string()));
  EXPECT_FALSE(fs::exists(restore_dir_));
}

TEST_F(ReferralBackupTest, ADamagedBackupDescriptionIsReportedNotListed) {
  std::unique_ptr<ReferralStore> store = OpenStore(Options(data_dir_));
  ASSERT_NE(store, nullptr);
  Submit(*store, "a");
  auto first = CreateBackupNow(*store, backup_dir_);
  auto second = CreateBackupNow(*store, backup_dir_);
  ASSERT_TRUE(first.ok() && second.ok());

  // BackupEngine's description of backup 1: which files, their checksums.
  const fs::path meta =
      fs::path(backup_dir_) / "meta" / std::to_string(first->backup_id);
  ASSERT_TRUE(fs::exists(meta));
  std::ofstream(meta, std::ios::trunc) << "not a backup description";

  auto listed = ListBackups(Location());
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].backup_id, second->backup_id);
  auto verified = VerifyBackup(Location(), first->backup_id);
  EXPECT_EQ(verified.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(verified.status().message(),
              HasSubstr(absl::StrCat("meta/", first->backup_id)));
  EXPECT_EQ(RestoreBackup(Location(), first->backup_id, restore_dir_).code(),
            absl::StatusCode::kDataLoss);
  // The latest intact one still restores.
  EXPECT_TRUE(RestoreBackup(Location(), std::nullopt, restore_dir_).ok());
}

TEST_F(ReferralBackupTest, RestoreNeverWritesOverAnything) {
  std::unique_ptr<ReferralStore> store = OpenStore(Options(data_dir_));
  ASSERT_NE(store, nullptr);
  Submit(*store, "a");
  ASSERT_TRUE(CreateBackupNow(*store, backup_dir_).ok());

  fs::create_directories(restore_dir_);
  std::ofstream(restore_dir_ + "/something") << "keep me";
  const absl::Status refused =
      RestoreBackup(Location(), std::nullopt, restore_dir_);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_EQ(ReadWholeFile(restore_dir_ + "/something"), "keep me");
  EXPECT_EQ(FilesUnder(restore_dir_).size(), 1u);
  // Nor over the live store itself.
  EXPECT_EQ(RestoreBackup(Location(), std::nullopt, data_dir_).code(),
            absl::StatusCode::kFailedPrecondition);

  // An existing empty directory is fine.
  const std::string empty_dir = dir_.path() + "/empty";
  fs::create_directories(empty_dir);
  ASSERT_TRUE(RestoreBackup(Location(), std::nullopt, empty_dir).ok());
  EXPECT_EQ(OpenStore(Options(empty_dir))->ReadyCount(kQueue), 1);
}

TEST_F(ReferralBackupTest, OneBackupAtATime) {
  std::unique_ptr<ReferralStore> store = OpenStore(Options(data_dir_));
  ASSERT_NE(store, nullptr);
  Submit(*store, "a");
  // The first request is accepted before CreateBackup returns, so the
  // second, made at once, finds it running.
  absl::Notification first_done;
  absl::StatusOr<BackupInfo> first;
  store->CreateBackup(backup_dir_, [&](absl::StatusOr<BackupInfo> result) {
    first = std::move(result);
    first_done.Notify();
  });
  auto second = CreateBackupNow(*store, backup_dir_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAborted);
  first_done.WaitForNotification();
  ASSERT_TRUE(first.ok()) << first.status();
  // Once it has finished, the next one runs.
  auto third = CreateBackupNow(*store, backup_dir_);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(ListBackups(Location())->size(), 2u);
}

TEST_F(ReferralBackupTest, ClosingTheStoreAnswersARunningBackup) {
  std::unique_ptr<ReferralStore> store = OpenStore(Options(data_dir_));
  ASSERT_NE(store, nullptr);
  const std::string description(20'000, 'x');
  for (int i = 0; i < 200; ++i) {
    Submit(*store, absl::StrCat("k", i), description);
  }
  absl::Notification answered;
  absl::StatusOr<BackupInfo> result;
  store->CreateBackup(backup_dir_, [&](absl::StatusOr<BackupInfo> r) {
    result = std::move(r);
    answered.Notify();
  });
  store.reset();  // closes while the backup may still be copying
  ASSERT_TRUE(answered.HasBeenNotified());
  // Either it finished first, or it was stopped and says so.
  if (result.ok()) {
    EXPECT_TRUE(VerifyBackup(Location(), result->backup_id).ok());
  } else {
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable)
        << result.status();
  }
  // The store itself closed cleanly.
  std::unique_ptr<ReferralStore> reopened = OpenStore(Options(data_dir_));
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->ReadyCount(kQueue), 200);
}

TEST_F(ReferralBackupTest, BackupsStayOutOfTheDataDirectory) {
  std::unique_ptr<ReferralStore> store = OpenStore(Options(data_dir_));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(CreateBackupNow(*store, data_dir_ + "/backups").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateBackupNow(*store, data_dir_).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateBackupNow(*store, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(data_dir_ + "/backups"));
}

TEST_F(ReferralBackupTest, EncryptedStoreBackupsStayEncryptedAndNeedTheKey) {
  std::unique_ptr<ReferralStore> store = OpenStore(Options(data_dir_, key_));
  ASSERT_NE(store, nullptr);
  const StoredReferral submitted =
      Submit(*store, "a", absl::StrCat("Child seen with ", kDistinctive));
  for (int i = 0; i < 20; ++i) Submit(*store, absl::StrCat("k", i));
  auto backup = CreateBackupNow(*store, backup_dir_);
  ASSERT_TRUE(backup.ok()) << backup.status();

  // No file of the backup holds the plaintext.
  const std::vector<fs::path> files = FilesUnder(backup_dir_);
  ASSERT_GT(files.size(), 3u);
  for (const fs::path& file : files) {
    EXPECT_EQ(ReadWholeFile(file).find(kDistinctive), std::string::npos)
        << file;
  }
  EXPECT_TRUE(fs::exists(fs::path(backup_dir_) / "KEYCHECK"));

  // Listing, verifying and restoring need the store's key.
  EXPECT_EQ(ListBackups(Location()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ListBackups(Location(other_key_)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto listed = ListBackups(Location(key_));
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE(VerifyBackup(Location(key_), backup->backup_id).ok());
  EXPECT_EQ(VerifyBackup(Location(other_key_), 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(RestoreBackup(Location(), std::nullopt, restore_dir_).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      RestoreBackup(Location(other_key_), std::nullopt, restore_dir_).code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(restore_dir_));

  ASSERT_TRUE(RestoreBackup(Location(key_), std::nullopt, restore_dir_).ok());
  EXPECT_TRUE(fs::exists(fs::path(restore_dir_) / "KEYCHECK"));
  for (const fs::path& file : FilesUnder(restore_dir_)) {
    EXPECT_EQ(ReadWholeFile(file).find(kDistinctive), std::string::npos)
        << file;
  }
  EXPECT_EQ(ReferralStore::Open(Options(restore_dir_)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      ReferralStore::Open(Options(restore_dir_, other_key_)).status().code(),
      absl::StatusCode::kFailedPrecondition);
  std::unique_ptr<ReferralStore> restored =
      OpenStore(Options(restore_dir_, key_));
  ASSERT_NE(restored, nullptr);
  auto read = restored->GetReferral(submitted.referral_id());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->SerializeAsString(), submitted.SerializeAsString());
  EXPECT_EQ(restored->ReadyCount(kQueue), 21);
  auto audit = VerifyAudit(*restored);
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(audit->intact) << audit->problem;

  // A store without encryption cannot add plaintext backups here.
  const std::string plain_dir = dir_.path() + "/plain";
  std::unique_ptr<ReferralStore> plain = OpenStore(Options(plain_dir));
  ASSERT_NE(plain, nullptr);
  Submit(*plain, "p", kDistinctive);
  EXPECT_EQ(CreateBackupNow(*plain, backup_dir_).status().code(),
            absl::StatusCode::kFailedPrecondition);
  for (const fs::path& file : FilesUnder(backup_dir_)) {
    EXPECT_EQ(ReadWholeFile(file).find(kDistinctive), std::string::npos)
        << file;
  }
  // Nor an encrypted store its encrypted ones among plaintext backups.
  const std::string plain_backups = dir_.path() + "/plain-backups";
  ASSERT_TRUE(CreateBackupNow(*plain, plain_backups).ok());
  EXPECT_EQ(CreateBackupNow(*store, plain_backups).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ListBackups({plain_backups, key_}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace referral::storage::testing
