// The standard gRPC health service on a real broker process: SERVING once
// started, on the main port and on the plaintext health-only port;
// NOT_SERVING while draining on shutdown and while the store cannot write
// (a full filesystem), and SERVING again once space is freed.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "support/broker_process.h"
#include "support/sample_referral.h"

namespace referral {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::referral::testing::BrokerClients;
using ::referral::testing::BrokerProcess;
using ::referral::testing::BrokerProcessOptions;
using ::referral::testing::SampleReferral;
using ::referral::testing::TempDir;

std::unique_ptr<Health::Stub> HealthStub(int port) {
  return Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
}

// The status Check reports for `service`, or the call's error code.
struct CheckResult {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  HealthCheckResponse::ServingStatus serving = HealthCheckResponse::UNKNOWN;
};

CheckResult Check(Health::Stub& health, const std::string& service) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::Status status = health.Check(&context, request, &response);
  return {status.error_code(), response.status()};
}

// Polls Check until it reports `want` (or a minute passes).
bool AwaitServingStatus(Health::Stub& health,
                        HealthCheckResponse::ServingStatus want) {
  const absl::Time deadline = absl::Now() + absl::Minutes(1);
  while (absl::Now() < deadline) {
    CheckResult result = Check(health, "");
    if (result.code == grpc::StatusCode::OK && result.serving == want) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

grpc::Status Submit(BrokerClients& clients, const std::string& key,
                    std::string* referral_id = nullptr) {
  v1::SubmitReferralRequest request;
  *request.mutable_referral() = SampleReferral();
  request.set_idempotency_key(key);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::SubmitReferralResponse response;
  grpc::Status status =
      clients.intake->SubmitReferral(&context, request, &response);
  if (referral_id != nullptr) *referral_id = response.referral_id();
  return status;
}

TEST(BrokerHealthTest, ServingOnTheMainPortForTheBrokerAndEachService) {
  TempDir dir;
  auto broker = BrokerProcess::Start({.data_dir = dir.Sub("data")});
  ASSERT_TRUE(broker.ok()) << broker.status();
  auto health = HealthStub((*broker)->port());
  for (const std::string service :
       {"", "referral.v1.ReferralIntake", "referral.v1.Triage",
        "referral.v1.Operations"}) {
    CheckResult result = Check(*health, service);
    EXPECT_EQ(result.code, grpc::StatusCode::OK) << service;
    EXPECT_EQ(result.serving, HealthCheckResponse::SERVING) << service;
  }
  EXPECT_EQ(Check(*health, "no.such.Service").code,
            grpc::StatusCode::NOT_FOUND);
}

TEST(BrokerHealthTest, HealthOnlyPortAnswersHealthAndNothingElse) {
  TempDir dir;
  auto broker =
      BrokerProcess::Start({.data_dir = dir.Sub("data"), .health_port = true});
  ASSERT_TRUE(broker.ok()) << broker.status();
  ASSERT_GT((*broker)->health_port(), 0);
  ASSERT_NE((*broker)->health_port(), (*broker)->port());

  auto health = HealthStub((*broker)->health_port());
  CheckResult result = Check(*health, "referral.v1.Triage");
  EXPECT_EQ(result.code, grpc::StatusCode::OK);
  EXPECT_EQ(result.serving, HealthCheckResponse::SERVING);

  // Even in development mode (every caller allowed on the main port), the
  // health port serves no referral method.
  BrokerClients on_health_port(
      absl::StrCat("127.0.0.1:", (*broker)->health_port()));
  grpc::ClientContext context;
  v1::GetQueueStatsResponse stats;
  EXPECT_EQ(on_health_port.operations->GetQueueStats(&context, {}, &stats)
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST(BrokerHealthTest, NotServingWhileDrainingButCallsStillAnswered) {
  TempDir dir;
  auto broker = BrokerProcess::Start({
      .data_dir = dir.Sub("data"),
      .flags = {"--shutdown_drain_seconds=5", "--shutdown_grace_seconds=1"},
      .health_port = true,
  });
  ASSERT_TRUE(broker.ok()) << broker.status();
  auto health = HealthStub((*broker)->health_port());

  grpc::ClientContext watch_context;
  HealthCheckRequest request;
  auto watch = health->Watch(&watch_context, request);
  HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  ASSERT_EQ(update.status(), HealthCheckResponse::SERVING);

  ASSERT_EQ(kill((*broker)->pid(), SIGTERM), 0);
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);

  // Draining: load balancers are told to go elsewhere, but calls already on
  // their way are still served.
  BrokerClients clients((*broker)->address());
  grpc::ClientContext context;
  v1::GetQueueStatsResponse stats;
  EXPECT_TRUE(clients.operations->GetQueueStats(&context, {}, &stats).ok());

  watch_context.TryCancel();
  auto exit_code = (*broker)->Terminate();
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0);
}

// A tmpfs of a few megabytes for the data directory, so that the disk can
// really fill up. Needs the right to mount (root in CI).
class FullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mount_point_ = dir_.Sub("small-disk");
    std::filesystem::create_directories(mount_point_);
    if (mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, "size=48m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno)
                   << "); the full-disk behaviour is not tested on this "
                      "machine";
    }
    mounted_ = true;
  }

  void TearDown() override {
    broker_.reset();
    if (mounted_) umount2(mount_point_.c_str(), MNT_DETACH);
  }

  // Writes a filler file until the filesystem refuses more.
  void FillTheDisk() {
    std::ofstream filler(mount_point_ + "/filler", std::ios::binary);
    const std::string block(1 << 16, 'x');
    while (filler.write(block.data(), block.size()) && filler.flush()) {
    }
  }

  TempDir dir_;
  std::string mount_point_;
  bool mounted_ = false;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(FullDiskTest, NotServingWhileTheStoreCannotWriteAndBackWhenFreed) {
  const std::string log_file = dir_.Sub("broker.log");
  // No rate limit: only the full disk may refuse the submissions below.
  const BrokerProcessOptions options{
      .data_dir = mount_point_ + "/data",
      .flags = {"--rate_limit_per_second=1000000",
                "--rate_limit_burst=1000000"},
      .log_file = log_file};
  auto broker = BrokerProcess::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  broker_ = *std::move(broker);
  auto clients = std::make_unique<BrokerClients>(broker_->address());
  auto health = HealthStub(broker_->port());

  std::string before;
  ASSERT_TRUE(Submit(*clients, "before-full", &before).ok());

  FillTheDisk();
  // The write-ahead log may still have room preallocated; keep submitting
  // until a commit fails for want of space.
  grpc::Status refused;
  for (int i = 0; i < 20000 && refused.ok(); ++i) {
    refused = Submit(*clients, absl::StrCat("while-full-", i));
  }
  ASSERT_FALSE(refused.ok()) << "the disk never filled up";
  EXPECT_TRUE(refused.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
              refused.error_code() == grpc::StatusCode::UNAVAILABLE)
      << refused.error_code() << " " << refused.error_message();
  EXPECT_TRUE(AwaitServingStatus(*health, HealthCheckResponse::NOT_SERVING))
      << "after the refusal " << refused.error_message();

  std::filesystem::remove(mount_point_ + "/filler");
  // Back in place within seconds, or -- when a memtable filled up just as
  // the disk did, which RocksDB 7.8 cannot resume from in place (see
  // ReferralStoreImpl::ResumeWithin) -- the broker says it needs a restart,
  // and a restart, as its supervisor would make, brings it back.
  bool restarted = false;
  const absl::Time deadline = absl::Now() + absl::Minutes(1);
  while (absl::Now() < deadline) {
    CheckResult result = Check(*health, "");
    if (result.code == grpc::StatusCode::OK &&
        result.serving == HealthCheckResponse::SERVING) {
      break;
    }
    if (!restarted &&
        testing::WaitForFileToContain(log_file, "restart the broker",
                                      absl::ZeroDuration())) {
      ASSERT_TRUE(broker_->Terminate().ok());
      broker = BrokerProcess::Start(options);
      ASSERT_TRUE(broker.ok()) << broker.status();
      broker_ = *std::move(broker);
      clients = std::make_unique<BrokerClients>(broker_->address());
      health = HealthStub(broker_->port());
      restarted = true;
      continue;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::printf("full disk: writes resumed %s\n",
              restarted ? "after a restart" : "in place");
  EXPECT_TRUE(AwaitServingStatus(*health, HealthCheckResponse::SERVING));
  std::string after;
  EXPECT_TRUE(Submit(*clients, "after-freed", &after).ok());

  for (const std::string& id : {before, after}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    v1::GetReferralStatusRequest request;
    request.set_referral_id(id);
    v1::GetReferralStatusResponse status;
    EXPECT_TRUE(
        clients->intake->GetReferralStatus(&context, request, &status).ok())
        << id;
  }
}

}  // namespace
}  // namespace referral
