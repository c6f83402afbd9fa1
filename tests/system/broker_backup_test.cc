// Online backup and restore with the real binaries: a backup taken through
// the admin RPC while agencies keep submitting, restored by referral_restore
// into a new data directory, served by a new broker. Every referral
// acknowledged before the backup started must be there.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/broker_process.h"
#include "support/sample_referral.h"

namespace referral {
namespace {

using ::referral::testing::BrokerClients;
using ::referral::testing::BrokerProcess;
using ::referral::testing::RunCommand;
using ::referral::testing::SampleReferral;
using ::referral::testing::TempDir;
using ::testing::HasSubstr;

// Agencies submitting without pause on their own threads, keeping the ids
// of every referral acknowledged with OK.
class Agencies {
 public:
  Agencies(const std::string& address, int threads) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, address, t] {
        BrokerClients clients(address);
        for (int i = 0; !stop_.load(); ++i) {
          v1::SubmitReferralRequest request;
          *request.mutable_referral() = SampleReferral();
          request.set_idempotency_key(absl::StrCat("agency-", t, "-", i));
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::seconds(30));
          v1::SubmitReferralResponse response;
          if (clients.intake->SubmitReferral(&context, request, &response)
                  .ok()) {
            absl::MutexLock lock(&mu_);
            acknowledged_.push_back(response.referral_id());
          }
        }
      });
    }
  }

  ~Agencies() { Stop(); }

  void Stop() {
    stop_ = true;
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

  // Waits until at least `count` referrals have been acknowledged in all.
  bool AwaitAcknowledged(size_t count) {
    struct Target {
      const std::vector<std::string>* acknowledged;
      size_t count;
      bool Reached() const { return acknowledged->size() >= count; }
    };
    absl::MutexLock lock(&mu_);
    const Target target{&acknowledged_, count};
    return mu_.AwaitWithTimeout(absl::Condition(&target, &Target::Reached),
                                absl::Minutes(2));
  }

  std::vector<std::string> Acknowledged() {
    absl::MutexLock lock(&mu_);
    return acknowledged_;
  }

 private:
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::vector<std::string> acknowledged_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

std::unique_ptr<BrokerProcess> StartBroker(const TempDir& dir,
                                           const std::string& data) {
  auto broker = BrokerProcess::Start({
      .data_dir = dir.Sub(data),
      .flags = {"--backup_dir=" + dir.Sub("backups"),
                "--shutdown_grace_seconds=1"},
      .log_file = dir.Sub(data + ".log"),
  });
  EXPECT_TRUE(broker.ok()) << broker.status();
  return broker.ok() ? *std::move(broker) : nullptr;
}

TEST(BrokerBackupTest, BackupUnderLoadRestoresEveryEarlierReferral) {
  TempDir dir;
  std::unique_ptr<BrokerProcess> broker = StartBroker(dir, "data");
  ASSERT_NE(broker, nullptr);
  BrokerClients admin(broker->address());

  Agencies agencies(broker->address(), 4);
  ASSERT_TRUE(agencies.AwaitAcknowledged(200));
  const std::vector<std::string> before_backup = agencies.Acknowledged();

  v1::CreateBackupResponse created;
  {
    grpc::ClientContext context;
    grpc::Status status =
        admin.operations->CreateBackup(&context, {}, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  // The agencies kept going throughout.
  ASSERT_TRUE(agencies.AwaitAcknowledged(before_backup.size() + 100));
  agencies.Stop();
  const uint32_t backup_id = created.backup().backup_id();
  EXPECT_GT(backup_id, 0u);
  EXPECT_GT(created.backup().size_bytes(), 0);

  {
    grpc::ClientContext context;
    v1::ListBackupsResponse listed;
    ASSERT_TRUE(admin.operations->ListBackups(&context, {}, &listed).ok());
    ASSERT_EQ(listed.backups_size(), 1);
    EXPECT_EQ(listed.backups(0).backup_id(), backup_id);
  }
  {
    grpc::ClientContext context;
    v1::VerifyBackupRequest request;
    request.set_backup_id(backup_id);
    v1::VerifyBackupResponse verified;
    grpc::Status status =
        admin.operations->VerifyBackup(&context, request, &verified);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }

  auto restored =
      RunCommand({REFERRAL_RESTORE_BIN, "--backup_dir=" + dir.Sub("backups"),
                  absl::StrCat("--backup_id=", backup_id),
                  "--data_dir=" + dir.Sub("restored")});
  ASSERT_TRUE(restored.ok());
  ASSERT_EQ(restored->exit_code, 0) << restored->err;

  std::unique_ptr<BrokerProcess> second = StartBroker(dir, "restored");
  ASSERT_NE(second, nullptr);
  BrokerClients clients(second->address());
  size_t missing = 0;
  for (const std::string& id : before_backup) {
    grpc::ClientContext context;
    v1::GetReferralStatusRequest request;
    request.set_referral_id(id);
    v1::GetReferralStatusResponse status;
    if (!clients.intake->GetReferralStatus(&context, request, &status).ok()) {
      ++missing;
      ADD_FAILURE() << id
                    << " was acknowledged before the backup but is "
                       "not in the restored store";
    }
  }
  std::printf("%zu acknowledged before the backup, %zu in all, %zu missing\n",
              before_backup.size(), agencies.Acknowledged().size(), missing);

  grpc::ClientContext context;
  v1::VerifyAuditResponse audit;
  ASSERT_TRUE(clients.operations->VerifyAudit(&context, {}, &audit).ok());
  EXPECT_TRUE(audit.intact()) << audit.problem();
}

TEST(BrokerBackupTest, RestoreRefusesADataDirectoryInUse) {
  TempDir dir;
  {
    std::unique_ptr<BrokerProcess> broker = StartBroker(dir, "data");
    ASSERT_NE(broker, nullptr);
    BrokerClients admin(broker->address());
    grpc::ClientContext context;
    v1::CreateBackupResponse created;
    ASSERT_TRUE(admin.operations->CreateBackup(&context, {}, &created).ok());
  }
  auto restored =
      RunCommand({REFERRAL_RESTORE_BIN, "--backup_dir=" + dir.Sub("backups"),
                  "--data_dir=" + dir.Sub("data")});
  ASSERT_TRUE(restored.ok());
  EXPECT_NE(restored->exit_code, 0);
  EXPECT_THAT(restored->err, HasSubstr("not empty"));
}

TEST(BrokerBackupTest, BackupsAreRefusedWhenNoDirectoryIsConfigured) {
  TempDir dir;
  auto broker = BrokerProcess::Start({.data_dir = dir.Sub("data")});
  ASSERT_TRUE(broker.ok()) << broker.status();
  BrokerClients admin((*broker)->address());
  grpc::ClientContext context;
  v1::CreateBackupResponse created;
  grpc::Status status = admin.operations->CreateBackup(&context, {}, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("--backup_dir"));
}

}  // namespace
}  // namespace referral
