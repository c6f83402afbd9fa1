// End to end: the real broker binary, the real CLI, SIGKILL in the middle
// of load, restart on the same data directory. Every referral that was
// acknowledged with OK must be there exactly once with its history, and
// referrals claimed but not decided must come back when their lease ends.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "support/broker_process.h"
#include "support/sample_referral.h"

namespace referral {
namespace {

using ::referral::testing::BrokerClients;
using ::referral::testing::BrokerProcess;
using ::referral::testing::ReadyIds;
using ::referral::testing::RunCommand;
using ::referral::testing::SampleReferral;
using ::referral::testing::TempDir;

constexpr char kQueue[] = "ifd-triage";

std::unique_ptr<BrokerProcess> StartBroker(const TempDir& dir) {
  auto broker = BrokerProcess::Start({
      .data_dir = dir.Sub("data"),
      .flags = {"--lease_check_ms=50", "--shutdown_grace_seconds=1"},
      .log_file = dir.Sub("broker.log"),
  });
  EXPECT_TRUE(broker.ok()) << broker.status();
  return broker.ok() ? *std::move(broker) : nullptr;
}

// Submits through the CLI and returns the referral id it reports.
std::string SubmitWithCli(const BrokerProcess& broker, const std::string& file,
                          const std::string& key) {
  auto result =
      RunCommand({REFERRAL_CLI_BIN, "--server=" + broker.address(), "--json",
                  "submit", file, "--idempotency_key=" + key});
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0) << result->err;
  v1::SubmitReferralResponse response;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(result->out,
                                                          &response, options)
                  .ok())
      << result->out;
  return response.referral_id();
}

grpc::Status SubmitKey(BrokerClients& clients, const std::string& key,
                       v1::SubmitReferralResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::SubmitReferralRequest request;
  *request.mutable_referral() = SampleReferral({.agency_id = "loadtest"});
  request.set_idempotency_key(key);
  return clients.intake->SubmitReferral(&context, request, response);
}

v1::GetReferralStatusResponse StatusOf(BrokerClients& clients,
                                       const std::string& id,
                                       grpc::Status* status_out = nullptr) {
  grpc::ClientContext context;
  v1::GetReferralStatusRequest request;
  request.set_referral_id(id);
  v1::GetReferralStatusResponse response;
  grpc::Status status =
      clients.intake->GetReferralStatus(&context, request, &response);
  if (status_out != nullptr) *status_out = status;
  return response;
}

TEST(BrokerRecoveryTest, NothingAcknowledgedIsLostOrDuplicatedAcrossAKill) {
  TempDir dir;
  std::unique_ptr<BrokerProcess> broker = StartBroker(dir);
  ASSERT_NE(broker, nullptr);

  // A few referrals from the sample files, through the agency CLI.
  std::map<std::string, std::string> acknowledged;  // key -> referral id
  for (const std::string name :
       {"police-domestic-abuse", "school-neglect", "hospital-immediate-risk"}) {
    const std::string key = "cli-" + name;
    const std::string id = SubmitWithCli(
        *broker,
        absl::StrCat(REFERRAL_SOURCE_DIR, "/clients/examples/", name, ".json"),
        key);
    ASSERT_FALSE(id.empty());
    acknowledged[key] = id;
  }

  // Claimed but never decided: must come back after the lease.
  BrokerClients clients(broker->address());
  {
    grpc::ClientContext context;
    v1::ClaimReferralsRequest request;
    request.set_queue(kQueue);
    request.set_max(2);
    request.set_lease_seconds(2);
    request.set_worker("worker.before.kill");
    v1::ClaimReferralsResponse response;
    ASSERT_TRUE(
        clients.triage->ClaimReferrals(&context, request, &response).ok());
    ASSERT_GE(response.claims_size(), 1);
  }
  std::vector<std::string> claimed_ids;
  for (const auto& [key, id] : acknowledged) {
    if (StatusOf(clients, id).state() == v1::REFERRAL_STATE_CLAIMED) {
      claimed_ids.push_back(id);
    }
  }
  ASSERT_FALSE(claimed_ids.empty());

  // Load from four agency clients; the broker is killed while they run.
  absl::Mutex mutex;
  std::vector<std::string> in_doubt;  // keys whose call failed
  std::atomic<int> next_key{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> agencies;
  for (int t = 0; t < 4; ++t) {
    agencies.emplace_back([&] {
      BrokerClients own(broker->address());
      while (!stop.load()) {
        const std::string key = absl::StrCat("load-", next_key.fetch_add(1));
        v1::SubmitReferralResponse response;
        grpc::Status status = SubmitKey(own, key, &response);
        absl::MutexLock lock(&mutex);
        if (status.ok()) {
          acknowledged[key] = response.referral_id();
        } else {
          in_doubt.push_back(key);
          return;  // the broker is gone
        }
      }
    });
  }
  // Kill once a good number of submissions has been acknowledged.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (;;) {
    {
      absl::MutexLock lock(&mutex);
      if (acknowledged.size() >= 300 || absl::Now() > deadline) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  broker->Kill();
  stop = true;
  for (auto& agency : agencies) agency.join();
  ASSERT_GE(acknowledged.size(), 300u);

  broker = StartBroker(dir);
  ASSERT_NE(broker, nullptr);
  BrokerClients after(broker->address());

  // Every acknowledged referral is there with its history.
  std::set<std::string> distinct_ids;
  for (const auto& [key, id] : acknowledged) {
    grpc::Status status;
    v1::GetReferralStatusResponse referral = StatusOf(after, id, &status);
    ASSERT_TRUE(status.ok()) << id << ": " << status.error_message();
    ASSERT_GE(referral.history_size(), 2) << id;
    EXPECT_EQ(referral.history(0).stage(), v1::STAGE_RECEIVED) << id;
    EXPECT_EQ(referral.history(1).stage(), v1::STAGE_ROUTED) << id;
    distinct_ids.insert(id);
  }
  EXPECT_EQ(distinct_ids.size(), acknowledged.size());

  // Resubmitting an acknowledged key stores nothing new.
  for (const auto& [key, id] : acknowledged) {
    if (!key.starts_with("load-")) continue;
    v1::SubmitReferralResponse response;
    ASSERT_TRUE(SubmitKey(after, key, &response).ok());
    EXPECT_TRUE(response.duplicate()) << key;
    EXPECT_EQ(response.referral_id(), id) << key;
  }
  // An in-doubt submission retried with its key lands exactly once.
  for (const std::string& key : in_doubt) {
    v1::SubmitReferralResponse first, second;
    ASSERT_TRUE(SubmitKey(after, key, &first).ok());
    ASSERT_TRUE(SubmitKey(after, key, &second).ok());
    EXPECT_TRUE(second.duplicate());
    EXPECT_EQ(first.referral_id(), second.referral_id());
    distinct_ids.insert(first.referral_id());
  }

  // Claimed-but-undecided referrals come back once their lease has run out.
  for (const std::string& id : claimed_ids) {
    const absl::Time give_up = absl::Now() + absl::Seconds(20);
    v1::GetReferralStatusResponse referral;
    do {
      referral = StatusOf(after, id);
      if (referral.state() == v1::REFERRAL_STATE_QUEUED) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (absl::Now() < give_up);
    EXPECT_EQ(referral.state(), v1::REFERRAL_STATE_QUEUED) << id;
    EXPECT_EQ(referral.history(referral.history_size() - 1).stage(),
              v1::STAGE_LEASE_EXPIRED)
        << id;
  }

  // Exactly once: the queues hold each stored referral once, and nothing
  // that was never acknowledged or retried.
  std::multiset<std::string> queued;
  grpc::ClientContext stats_context;
  v1::GetQueueStatsResponse stats;
  ASSERT_TRUE(
      after.operations
          ->GetQueueStats(&stats_context, v1::GetQueueStatsRequest(), &stats)
          .ok());
  int64_t claimed_total = 0;
  for (const auto& queue : stats.queues()) {
    for (const std::string& id : ReadyIds(after, queue.queue())) {
      queued.insert(id);
    }
    claimed_total += queue.claimed_count();
  }
  EXPECT_EQ(claimed_total, 0);
  for (const std::string& id : distinct_ids) {
    EXPECT_EQ(queued.count(id), 1u) << id;
  }
  EXPECT_EQ(queued.size(), distinct_ids.size());
  std::printf(
      "recovery: %zu acknowledged before the kill, %zu in doubt, %zu "
      "distinct stored, %zu leases returned\n",
      acknowledged.size(), in_doubt.size(), distinct_ids.size(),
      claimed_ids.size());

  ASSERT_TRUE(broker->Terminate().ok());
}

TEST(BrokerRecoveryTest, SigtermShutsDownCleanly) {
  TempDir dir;
  std::unique_ptr<BrokerProcess> broker = StartBroker(dir);
  ASSERT_NE(broker, nullptr);
  BrokerClients clients(broker->address());
  v1::SubmitReferralResponse response;
  ASSERT_TRUE(SubmitKey(clients, "term-1", &response).ok());
  auto exit_code = broker->Terminate();
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0);

  broker = StartBroker(dir);
  ASSERT_NE(broker, nullptr);
  BrokerClients after(broker->address());
  grpc::Status status;
  StatusOf(after, response.referral_id(), &status);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

}  // namespace
}  // namespace referral
