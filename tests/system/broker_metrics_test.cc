// The broker's Prometheus endpoint, scraped from a real broker process after
// real traffic: the exposition passes `promtool check metrics`, the queue
// gauges agree with GetQueueStats, and each counter moved by exactly what
// the traffic did.
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/broker_process.h"
#include "support/http_get.h"
#include "support/sample_referral.h"

namespace referral {
namespace {

using ::referral::testing::BrokerClients;
using ::referral::testing::BrokerProcess;
using ::referral::testing::HttpGet;
using ::referral::testing::RunCommand;
using ::referral::testing::SampleReferral;
using ::referral::testing::TempDir;
using ::testing::HasSubstr;

constexpr char kQueue[] = "ifd-triage";

// Series of one scrape: `name{label="value",...}` exactly as exposed -> value.
using Samples = std::map<std::string, double>;

Samples ParseExposition(const std::string& text) {
  Samples samples;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos ||
        !absl::SimpleAtod(line.substr(space + 1), &value)) {
      ADD_FAILURE() << "unparsable sample line: " << line;
      continue;
    }
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

class BrokerMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = BrokerProcess::Start({
        .data_dir = dir_.Sub("data"),
        .flags = {"--lease_check_ms=50", "--shutdown_grace_seconds=1"},
        .log_file = dir_.Sub("broker.log"),
    });
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
    ASSERT_GT(broker_->metrics_port(), 0);
    clients_ = std::make_unique<BrokerClients>(broker_->address());
  }

  std::string Scrape() {
    auto response = HttpGet(broker_->metrics_port(), "/metrics");
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) return "";
    EXPECT_EQ(response->status, 200);
    EXPECT_THAT(response->content_type, HasSubstr("text/plain"));
    return response->body;
  }

  grpc::Status Submit(v1::AgencyType type, const std::string& key) {
    v1::SubmitReferralRequest request;
    *request.mutable_referral() = SampleReferral();
    request.mutable_referral()->mutable_referrer()->set_agency_type(type);
    request.set_idempotency_key(key);
    grpc::ClientContext context;
    v1::SubmitReferralResponse response;
    return clients_->intake->SubmitReferral(&context, request, &response);
  }

  std::vector<v1::ClaimedReferral> Claim(int max, int lease_seconds) {
    v1::ClaimReferralsRequest request;
    request.set_queue(kQueue);
    request.set_max(max);
    request.set_lease_seconds(lease_seconds);
    request.set_worker("metrics-test");
    grpc::ClientContext context;
    v1::ClaimReferralsResponse response;
    grpc::Status status =
        clients_->triage->ClaimReferrals(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.claims().begin(), response.claims().end()};
  }

  v1::GetQueueStatsResponse QueueStats() {
    grpc::ClientContext context;
    v1::GetQueueStatsResponse response;
    grpc::Status status =
        clients_->operations->GetQueueStats(&context, {}, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<BrokerClients> clients_;
};

TEST_F(BrokerMetricsTest, ExpositionPassesPromtoolAfterTraffic) {
  ASSERT_TRUE(Submit(v1::AGENCY_TYPE_POLICE, "k1").ok());
  ASSERT_TRUE(Submit(v1::AGENCY_TYPE_SCHOOL, "k2").ok());
  ASSERT_EQ(Claim(1, 60).size(), 1u);

  const std::string path = dir_.Sub("scrape.txt");
  std::ofstream(path) << Scrape();
  auto checked = RunCommand(
      {"/bin/sh", "-c", absl::StrCat("promtool check metrics < ", path)});
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_EQ(checked->exit_code, 0) << "promtool found problems:\n"
                                   << checked->out << checked->err;
}

TEST_F(BrokerMetricsTest, QueueGaugesAgreeWithGetQueueStats) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(Submit(v1::AGENCY_TYPE_POLICE, absl::StrCat("k", i)).ok());
  }
  ASSERT_EQ(Claim(2, 600).size(), 2u);

  const v1::GetQueueStatsResponse stats = QueueStats();
  const Samples samples = ParseExposition(Scrape());
  bool saw_queue = false;
  for (const v1::QueueStats& queue : stats.queues()) {
    // Configured queues nothing has reached yet are listed by GetQueueStats
    // only; every queue the store knows has its series.
    const std::string labels = absl::StrCat("{queue=\"", queue.queue(), "\"}");
    auto ready = samples.find("referral_queue_ready_referrals" + labels);
    if (ready == samples.end()) {
      EXPECT_EQ(queue.ready_count() + queue.claimed_count(), 0)
          << queue.queue();
      continue;
    }
    saw_queue |= queue.queue() == kQueue;
    EXPECT_EQ(ready->second, queue.ready_count()) << queue.queue();
    EXPECT_EQ(samples.at("referral_queue_claimed_referrals" + labels),
              queue.claimed_count())
        << queue.queue();
    EXPECT_EQ(samples.at("referral_queue_dead_letter_referrals" + labels),
              queue.dead_letter_count())
        << queue.queue();
    EXPECT_EQ(samples.at("referral_queue_overdue_referrals" + labels),
              queue.overdue_count())
        << queue.queue();
    EXPECT_EQ(samples.at("referral_queue_due_within_hour_referrals" + labels),
              queue.due_within_hour_count())
        << queue.queue();
  }
  ASSERT_TRUE(saw_queue);
  const std::string triage = absl::StrCat("{queue=\"", kQueue, "\"}");
  EXPECT_EQ(samples.at("referral_queue_ready_referrals" + triage), 3);
  EXPECT_EQ(samples.at("referral_queue_claimed_referrals" + triage), 2);
  EXPECT_GE(samples.at("referral_queue_oldest_ready_age_seconds" + triage), 0);
  EXPECT_EQ(samples.at("referral_queue_oldest_ready_past_due_seconds" + triage),
            0);
}

TEST_F(BrokerMetricsTest, CountersFollowWhatTheTrafficDid) {
  ASSERT_TRUE(Submit(v1::AGENCY_TYPE_POLICE, "p1").ok());
  ASSERT_TRUE(Submit(v1::AGENCY_TYPE_POLICE, "p2").ok());
  ASSERT_TRUE(Submit(v1::AGENCY_TYPE_SCHOOL, "s1").ok());
  // Refused: counted as a call, not as intake.
  ASSERT_EQ(Submit(v1::AGENCY_TYPE_UNSPECIFIED, "bad").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // One decided, one released and claimed again (a redelivery), one left to
  // expire (a lease expiry, then it waits again).
  std::vector<v1::ClaimedReferral> claimed = Claim(3, 600);
  ASSERT_EQ(claimed.size(), 3u);
  {
    v1::RecordDecisionRequest request;
    request.set_referral_id(claimed[0].referral_id());
    request.set_lease_token(claimed[0].lease_token());
    request.set_decision(v1::DECISION_EARLY_HELP);
    request.set_rationale("Fictitious rationale.");
    grpc::ClientContext context;
    v1::RecordDecisionResponse response;
    ASSERT_TRUE(
        clients_->triage->RecordDecision(&context, request, &response).ok());
  }
  {
    v1::ReleaseReferralRequest request;
    request.set_referral_id(claimed[1].referral_id());
    request.set_lease_token(claimed[1].lease_token());
    request.set_reason("Needs the duty manager.");
    grpc::ClientContext context;
    v1::ReleaseReferralResponse response;
    ASSERT_TRUE(
        clients_->triage->ReleaseReferral(&context, request, &response).ok());
  }
  {
    v1::ExtendClaimRequest request;
    request.set_referral_id(claimed[2].referral_id());
    request.set_lease_token(claimed[2].lease_token());
    request.set_lease_seconds(1);
    grpc::ClientContext context;
    v1::ExtendClaimResponse response;
    ASSERT_TRUE(
        clients_->triage->ExtendClaim(&context, request, &response).ok());
  }
  // The released one comes back first; the expiring one once its lease ends.
  std::vector<v1::ClaimedReferral> again = Claim(1, 600);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].referral_id(), claimed[1].referral_id());

  Samples samples;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    samples = ParseExposition(Scrape());
    if (samples["referral_lease_expiries_total{queue=\"ifd-triage\"}"] >= 1 ||
        absl::Now() > deadline) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));  // the reaper runs every 50 ms
  }

  EXPECT_EQ(samples["referral_lease_expiries_total{queue=\"ifd-triage\"}"], 1);
  EXPECT_EQ(samples["referral_redeliveries_total{queue=\"ifd-triage\"}"], 1);
  EXPECT_EQ(samples["referral_intake_total{agency_type=\"police\"}"], 2);
  EXPECT_EQ(samples["referral_intake_total{agency_type=\"school\"}"], 1);
  EXPECT_EQ(samples["referral_intake_total{agency_type=\"housing\"}"], 0);
  EXPECT_EQ(samples["referral_decisions_total{decision=\"early_help\"}"], 1);
  EXPECT_EQ(samples["referral_decisions_total{decision=\"no_further_action\"}"],
            0);
  // The exposition lists labels in name order.
  const auto handled = [&](const std::string& service,
                           const std::string& method, const std::string& code) {
    return samples[absl::StrCat("grpc_server_handled_total{grpc_code=\"", code,
                                "\",grpc_method=\"", method,
                                "\",grpc_service=\"", service, "\"}")];
  };
  const auto timed = [&](const std::string& service,
                         const std::string& method) {
    return samples[absl::StrCat("grpc_server_handling_seconds_count{",
                                "grpc_method=\"", method, "\",grpc_service=\"",
                                service, "\"}")];
  };
  const std::string intake = "referral.v1.ReferralIntake";
  const std::string triage = "referral.v1.Triage";
  EXPECT_EQ(handled(intake, "SubmitReferral", "OK"), 3);
  EXPECT_EQ(handled(intake, "SubmitReferral", "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(timed(intake, "SubmitReferral"), 4);
  EXPECT_EQ(timed(triage, "ClaimReferrals"), 2);
  EXPECT_EQ(timed(triage, "RecordDecision"), 1);
  EXPECT_EQ(handled(triage, "ReleaseReferral", "OK"), 1);
  EXPECT_EQ(samples["referral_broker_serving"], 1);
  EXPECT_EQ(samples["referral_store_writable"], 1);
  EXPECT_GT(samples["referral_store_disk_bytes"], 0);
  EXPECT_GE(samples["referral_store_pending_compaction_bytes"], 0);
}

TEST_F(BrokerMetricsTest, GroupCommitsAreTimedByStage) {
  for (const char* key : {"g1", "g2", "g3"}) {
    ASSERT_TRUE(Submit(v1::AGENCY_TYPE_POLICE, key).ok());
  }
  // Timed once the replies are handed over, so await the third.
  Samples samples;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    samples = ParseExposition(Scrape());
    if (samples["referral_store_group_commit_mutations_sum"] >= 3) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  // Each submission waited for the one before: three group commits of one
  // (and perhaps more from the lease reaper, which also writes).
  const double groups = samples["referral_store_group_commit_mutations_count"];
  EXPECT_GE(samples["referral_store_group_commit_mutations_sum"], 3);
  EXPECT_GE(groups, 3);
  for (const char* stage : {"waited", "applied", "synced"}) {
    EXPECT_EQ(samples[absl::StrCat(
                  "referral_store_group_commit_seconds_count{stage=\"", stage,
                  "\"}")],
              groups)
        << stage;
  }
  EXPECT_GT(
      samples["referral_store_group_commit_seconds_sum{stage=\"synced\"}"], 0);
}

TEST_F(BrokerMetricsTest, BuildInfoNamesWhatIsRunning) {
  const std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr("referral_broker_build_info{"));
  EXPECT_THAT(text, HasSubstr("grpc_version=\"1.51"));
  EXPECT_THAT(text, HasSubstr("rocksdb_version=\"7.8"));
  EXPECT_THAT(text, HasSubstr("protobuf_version=\"3.21"));
}

TEST_F(BrokerMetricsTest, OutcomeBacklogIsCountedPerAgency) {
  ASSERT_TRUE(Submit(v1::AGENCY_TYPE_POLICE, "o1").ok());
  std::vector<v1::ClaimedReferral> claimed = Claim(1, 600);
  ASSERT_EQ(claimed.size(), 1u);
  v1::RecordDecisionRequest request;
  request.set_referral_id(claimed[0].referral_id());
  request.set_lease_token(claimed[0].lease_token());
  request.set_decision(v1::DECISION_NO_FURTHER_ACTION);
  request.set_rationale("Fictitious rationale.");
  grpc::ClientContext context;
  v1::RecordDecisionResponse response;
  ASSERT_TRUE(
      clients_->triage->RecordDecision(&context, request, &response).ok());

  Samples samples = ParseExposition(Scrape());
  EXPECT_EQ(samples["referral_outcomes_unacknowledged_referrals{agency="
                    "\"cambs-police\"}"],
            1);
  EXPECT_EQ(samples["referral_outcomes_unacknowledged_overdue_referrals{"
                    "agency=\"cambs-police\"}"],
            0);
}

}  // namespace
}  // namespace referral
