// The broker's three services over real gRPC on a loopback ephemeral port,
// with a real RocksDB store in a temporary directory: every RPC and every
// error path of the core contract.
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "referral/v1/broker.grpc.pb.h"
#include "server/broker.h"
#include "support/broker_process.h"
#include "support/sample_referral.h"

namespace referral {
namespace {

using ::referral::testing::BrokerClients;
using ::referral::testing::SampleReferral;
using ::referral::testing::SampleReferralOptions;
using ::referral::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Polls `condition` until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& condition,
                absl::Duration timeout = absl::Seconds(15)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

class BrokerServicesTest : public ::testing::Test {
 protected:
  void SetUp() override { StartBroker(); }

  // `rate_limit_burst`: zero for the broker's default limit; otherwise that
  // burst, refilled so slowly that a test never sees a token come back.
  void StartBroker(int max_deliveries = 3, double rate_limit_burst = 0) {
    server::BrokerOptions options;
    if (rate_limit_burst > 0) {
      options.settings.set_rate_limit_burst(rate_limit_burst);
      options.settings.set_rate_limit_per_second(0.001);
    }
    options.settings.set_insecure_development(true);
    options.settings.set_listen("127.0.0.1:0");
    options.settings.set_data_dir(dir_.Sub("data"));
    options.settings.set_max_deliveries(max_deliveries);
    options.settings.set_lease_check_ms(50);
    options.settings.set_shutdown_grace_seconds(1);
    auto broker = server::Broker::Start(options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
    clients_ = std::make_unique<BrokerClients>(
        absl::StrCat("127.0.0.1:", broker_->port()));
  }

  void RestartBroker() {
    clients_.reset();
    broker_.reset();
    StartBroker();
  }

  void RestartBrokerWithBurst(double burst) {
    clients_.reset();
    broker_.reset();
    StartBroker(/*max_deliveries=*/3, burst);
  }

  grpc::Status Submit(const v1::Referral& referral, const std::string& key,
                      v1::SubmitReferralResponse* response) {
    grpc::ClientContext context;
    v1::SubmitReferralRequest request;
    *request.mutable_referral() = referral;
    request.set_idempotency_key(key);
    return clients_->intake->SubmitReferral(&context, request, response);
  }

  grpc::Status SubmitBatch(
      const std::vector<std::pair<v1::Referral, std::string>>& submissions,
      v1::SubmitReferralsResponse* response) {
    grpc::ClientContext context;
    v1::SubmitReferralsRequest request;
    for (const auto& [referral, key] : submissions) {
      v1::SubmitReferralRequest* submission = request.add_referrals();
      *submission->mutable_referral() = referral;
      submission->set_idempotency_key(key);
    }
    return clients_->intake->SubmitReferrals(&context, request, response);
  }

  // Ready referrals in every queue.
  int64_t TotalReady() {
    grpc::ClientContext context;
    v1::GetQueueStatsResponse stats;
    EXPECT_TRUE(
        clients_->operations
            ->GetQueueStats(&context, v1::GetQueueStatsRequest(), &stats)
            .ok());
    int64_t ready = 0;
    for (const auto& queue : stats.queues()) ready += queue.ready_count();
    return ready;
  }

  v1::SubmitReferralResponse SubmitOk(const SampleReferralOptions& options,
                                      const std::string& key) {
    v1::SubmitReferralResponse response;
    grpc::Status status = Submit(SampleReferral(options), key, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  grpc::Status Claim(const std::string& queue, int max,
                     v1::ClaimReferralsResponse* response,
                     int lease_seconds = 60,
                     const std::string& worker = "sw.one") {
    grpc::ClientContext context;
    v1::ClaimReferralsRequest request;
    request.set_queue(queue);
    request.set_max(max);
    request.set_lease_seconds(lease_seconds);
    request.set_worker(worker);
    return clients_->triage->ClaimReferrals(&context, request, response);
  }

  v1::ClaimedReferral ClaimOne(const std::string& queue,
                               int lease_seconds = 60) {
    v1::ClaimReferralsResponse response;
    grpc::Status status = Claim(queue, 1, &response, lease_seconds);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.claims_size(), 1);
    return response.claims_size() > 0 ? response.claims(0)
                                      : v1::ClaimedReferral();
  }

  grpc::Status Decide(const std::string& id, const std::string& token,
                      v1::Decision decision = v1::DECISION_EARLY_HELP) {
    grpc::ClientContext context;
    v1::RecordDecisionRequest request;
    request.set_referral_id(id);
    request.set_lease_token(token);
    request.set_decision(decision);
    request.set_rationale("Family agrees to early help support.");
    request.set_feedback("Referred to early help; thank you.");
    v1::RecordDecisionResponse response;
    return clients_->triage->RecordDecision(&context, request, &response);
  }

  grpc::Status Release(const std::string& id, const std::string& token,
                       v1::ReleaseReferralResponse* response) {
    grpc::ClientContext context;
    v1::ReleaseReferralRequest request;
    request.set_referral_id(id);
    request.set_lease_token(token);
    request.set_reason("Needs the police liaison officer.");
    return clients_->triage->ReleaseReferral(&context, request, response);
  }

  v1::GetReferralStatusResponse Status(const std::string& id) {
    grpc::ClientContext context;
    v1::GetReferralStatusRequest request;
    request.set_referral_id(id);
    v1::GetReferralStatusResponse response;
    grpc::Status status =
        clients_->intake->GetReferralStatus(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  v1::QueueStats Stats(const std::string& queue) {
    grpc::ClientContext context;
    v1::GetQueueStatsResponse response;
    grpc::Status status = clients_->operations->GetQueueStats(
        &context, v1::GetQueueStatsRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    for (const v1::QueueStats& stats : response.queues()) {
      if (stats.queue() == queue) return stats;
    }
    ADD_FAILURE() << "no stats for queue " << queue;
    return v1::QueueStats();
  }

  TempDir dir_;
  std::unique_ptr<server::Broker> broker_;
  std::unique_ptr<BrokerClients> clients_;
};

std::vector<v1::Stage> Stages(const v1::GetReferralStatusResponse& status) {
  std::vector<v1::Stage> stages;
  for (const auto& event : status.history()) stages.push_back(event.stage());
  return stages;
}

TEST_F(BrokerServicesTest, SubmitReturnsReferenceQueueAndDueTime) {
  v1::SubmitReferralResponse response = SubmitOk({}, "key-1");
  EXPECT_THAT(response.referral_id(), ::testing::StartsWith("REF-"));
  EXPECT_FALSE(response.duplicate());
  EXPECT_FALSE(response.queue().empty());
  EXPECT_GT(response.received_at().seconds(), 0);
  EXPECT_GT(response.due_at().seconds(), response.received_at().seconds());
  EXPECT_EQ(Stats(response.queue()).ready_count(), 1);
}

TEST_F(BrokerServicesTest, ResubmittingTheSameKeyReturnsTheOriginal) {
  v1::SubmitReferralResponse first = SubmitOk({}, "same-key");
  v1::SubmitReferralResponse second = SubmitOk({}, "same-key");
  EXPECT_TRUE(second.duplicate());
  EXPECT_EQ(second.referral_id(), first.referral_id());
  EXPECT_EQ(second.queue(), first.queue());
  EXPECT_EQ(Stats(first.queue()).ready_count(), 1);
}

TEST_F(BrokerServicesTest, TheSameKeyForADifferentReferralIsRefused) {
  SubmitOk({}, "reused-key");
  v1::SubmitReferralResponse response;
  grpc::Status status = Submit(SampleReferral({.given_name = "Otherchild"}),
                               "reused-key", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(status.error_message(), HasSubstr("idempotency_key"));
}

TEST_F(BrokerServicesTest, KeysAreScopedToTheAgency) {
  v1::SubmitReferralResponse police =
      SubmitOk({.agency_id = "cambs-police"}, "shared-key");
  v1::SubmitReferralResponse school =
      SubmitOk({.agency_id = "school-one"}, "shared-key");
  EXPECT_FALSE(school.duplicate());
  EXPECT_NE(police.referral_id(), school.referral_id());
}

TEST_F(BrokerServicesTest, AnInvalidReferralNamesEveryFieldAndStoresNothing) {
  v1::Referral referral = SampleReferral();
  referral.mutable_children(0)->set_nhs_number("9434765871");
  referral.clear_concerns();
  v1::SubmitReferralResponse response;
  grpc::Status status = Submit(referral, "bad-1", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("children[0].nhs_number"));
  EXPECT_THAT(status.error_message(), HasSubstr("concerns"));
  EXPECT_THAT(status.error_message(), ::testing::Not(HasSubstr("9434765871")));

  grpc::ClientContext context;
  v1::GetQueueStatsResponse stats;
  ASSERT_TRUE(clients_->operations
                  ->GetQueueStats(&context, v1::GetQueueStatsRequest(), &stats)
                  .ok());
  for (const auto& queue : stats.queues()) {
    EXPECT_EQ(queue.ready_count(), 0) << queue.queue();
  }
}

TEST_F(BrokerServicesTest, AMissingIdempotencyKeyIsInvalid) {
  v1::SubmitReferralResponse response;
  grpc::Status status = Submit(SampleReferral(), "", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("idempotency_key"));
}

TEST_F(BrokerServicesTest, ABatchStoresEveryReferralAndAnswersInOrder) {
  v1::SubmitReferralsResponse response;
  grpc::Status status =
      SubmitBatch({{SampleReferral({.given_name = "Annachild"}), "bulk-1"},
                   {SampleReferral({.immediate_risk = true}), "bulk-2"},
                   {SampleReferral({.given_name = "Carlchild"}), "bulk-3"}},
                  &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results_size(), 3);
  std::vector<std::string> ids;
  for (const v1::SubmitReferralResult& result : response.results()) {
    EXPECT_EQ(result.code(), 0) << result.message();
    EXPECT_TRUE(result.message().empty());
    EXPECT_THAT(result.accepted().referral_id(), ::testing::StartsWith("REF-"));
    EXPECT_FALSE(result.accepted().duplicate());
    ids.push_back(result.accepted().referral_id());
  }
  EXPECT_EQ(response.results(1).accepted().priority_band(),
            v1::PRIORITY_BAND_IMMEDIATE_RISK);
  EXPECT_EQ(response.results(0).accepted().priority_band(),
            v1::PRIORITY_BAND_STANDARD);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 3u);
  EXPECT_EQ(TotalReady(), 3);
  // Each is a referral like any other: followed by its own id.
  for (const std::string& id : ids) {
    EXPECT_EQ(Status(id).state(), v1::REFERRAL_STATE_QUEUED);
  }
}

TEST_F(BrokerServicesTest, ABadReferralInABatchIsRefusedAloneAndNotStored) {
  v1::Referral bad = SampleReferral({.given_name = "Badchild"});
  bad.mutable_children(0)->set_nhs_number("9434765871");
  v1::SubmitReferralsResponse response;
  grpc::Status status = SubmitBatch(
      {{SampleReferral(), "mixed-1"}, {bad, "mixed-2"}, {SampleReferral(), ""}},
      &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results_size(), 3);
  EXPECT_EQ(response.results(0).code(), 0);
  EXPECT_EQ(response.results(1).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(response.results(1).message(),
              HasSubstr("referral.children[0].nhs_number"));
  EXPECT_THAT(response.results(1).message(),
              ::testing::Not(HasSubstr("9434765871")));
  EXPECT_FALSE(response.results(1).has_accepted());
  EXPECT_EQ(response.results(2).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(response.results(2).message(), HasSubstr("idempotency_key"));
  EXPECT_EQ(TotalReady(), 1);
}

TEST_F(BrokerServicesTest, KeysRepeatedInABatchActAsSubmissionsInTurn) {
  const v1::Referral first = SampleReferral({.given_name = "Dorachild"});
  v1::SubmitReferralsResponse response;
  grpc::Status status = SubmitBatch(
      {{first, "repeat-key"},
       {first, "repeat-key"},
       {SampleReferral({.given_name = "Otherchild"}), "repeat-key"}},
      &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results_size(), 3);
  EXPECT_EQ(response.results(0).code(), 0);
  EXPECT_FALSE(response.results(0).accepted().duplicate());
  EXPECT_EQ(response.results(1).code(), 0);
  EXPECT_TRUE(response.results(1).accepted().duplicate());
  EXPECT_EQ(response.results(1).accepted().referral_id(),
            response.results(0).accepted().referral_id());
  EXPECT_EQ(response.results(2).code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(response.results(2).message(), HasSubstr("idempotency_key"));
  EXPECT_EQ(TotalReady(), 1);
}

TEST_F(BrokerServicesTest, ARetriedBatchReturnsTheOriginals) {
  const std::vector<std::pair<v1::Referral, std::string>> batch = {
      {SampleReferral({.given_name = "Evechild"}), "retry-1"},
      {SampleReferral({.given_name = "Finnchild"}), "retry-2"}};
  v1::SubmitReferralsResponse first;
  ASSERT_TRUE(SubmitBatch(batch, &first).ok());
  // The agency never saw the answer (say its connection dropped) and sends
  // the same batch again: nothing is stored twice.
  v1::SubmitReferralsResponse again;
  ASSERT_TRUE(SubmitBatch(batch, &again).ok());
  ASSERT_EQ(again.results_size(), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(again.results(i).code(), 0);
    EXPECT_TRUE(again.results(i).accepted().duplicate());
    EXPECT_EQ(again.results(i).accepted().referral_id(),
              first.results(i).accepted().referral_id());
  }
  EXPECT_EQ(TotalReady(), 2);
}

TEST_F(BrokerServicesTest, AnEmptyOrOversizedBatchIsInvalid) {
  v1::SubmitReferralsResponse response;
  grpc::Status empty = SubmitBatch({}, &response);
  EXPECT_EQ(empty.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(empty.error_message(), HasSubstr("referrals"));

  std::vector<std::pair<v1::Referral, std::string>> oversized;
  for (int i = 0; i < 501; ++i) {
    oversized.emplace_back(SampleReferral(), absl::StrCat("big-", i));
  }
  grpc::Status too_many = SubmitBatch(oversized, &response);
  EXPECT_EQ(too_many.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(too_many.error_message(), HasSubstr("referrals"));
  EXPECT_EQ(TotalReady(), 0);
}

TEST_F(BrokerServicesTest, EachReferralOfABatchCountsAgainstTheRateLimit) {
  RestartBrokerWithBurst(5);
  v1::SubmitReferralsResponse response;
  std::vector<std::pair<v1::Referral, std::string>> four;
  for (int i = 0; i < 4; ++i) {
    four.emplace_back(SampleReferral(), absl::StrCat("limited-", i));
  }
  ASSERT_TRUE(SubmitBatch(four, &response).ok());
  // One token is left of the burst of five: four more are too many.
  for (auto& [referral, key] : four) key += "-again";
  grpc::Status refused = SubmitBatch(four, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("retry after"));
}

TEST_F(BrokerServicesTest, StatusOfAnUnknownReferralIsNotFound) {
  grpc::ClientContext context;
  v1::GetReferralStatusRequest request;
  request.set_referral_id("REF-2026-999999");
  v1::GetReferralStatusResponse response;
  EXPECT_EQ(clients_->intake->GetReferralStatus(&context, request, &response)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(BrokerServicesTest, StatusOfAMalformedReferenceIsInvalid) {
  for (const std::string id : {"", "not-a-reference", "REF-2026-"}) {
    grpc::ClientContext context;
    v1::GetReferralStatusRequest request;
    request.set_referral_id(id);
    v1::GetReferralStatusResponse response;
    grpc::Status status =
        clients_->intake->GetReferralStatus(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << id;
    EXPECT_THAT(status.error_message(), HasSubstr("referral_id")) << id;
  }
}

TEST_F(BrokerServicesTest, HistoryRecordsEveryAcknowledgementInOrder) {
  v1::SubmitReferralResponse submitted = SubmitOk({}, "life-1");
  v1::ClaimedReferral claimed = ClaimOne(submitted.queue());
  ASSERT_EQ(claimed.referral_id(), submitted.referral_id());
  ASSERT_TRUE(Decide(claimed.referral_id(), claimed.lease_token()).ok());

  grpc::ClientContext context;
  v1::AcknowledgeOutcomeRequest ack;
  ack.set_referral_id(submitted.referral_id());
  v1::AcknowledgeOutcomeResponse ack_response;
  ASSERT_TRUE(
      clients_->intake->AcknowledgeOutcome(&context, ack, &ack_response).ok());

  v1::GetReferralStatusResponse status = Status(submitted.referral_id());
  EXPECT_EQ(status.state(), v1::REFERRAL_STATE_OUTCOME_ACKNOWLEDGED);
  EXPECT_THAT(Stages(status), ElementsAre(v1::STAGE_RECEIVED, v1::STAGE_ROUTED,
                                          v1::STAGE_CLAIMED, v1::STAGE_DECIDED,
                                          v1::STAGE_OUTCOME_ACKNOWLEDGED));
  EXPECT_EQ(status.decision(), v1::DECISION_EARLY_HELP);
  for (const auto& event : status.history()) {
    EXPECT_GT(event.at().seconds(), 0);
    EXPECT_FALSE(event.actor().empty());
  }
  EXPECT_EQ(status.history(2).actor(), "triage:sw.one");
  EXPECT_EQ(status.stage_durations_size(), 4);
}

TEST_F(BrokerServicesTest, ListQueueShowsDeliveryOrderWithoutClaiming) {
  v1::SubmitReferralResponse standard = SubmitOk({}, "order-1");
  v1::SubmitReferralResponse urgent =
      SubmitOk({.immediate_risk = true, .nhs_number = "9990000026"}, "order-2");
  // Immediate risk may be routed to its own queue; list each queue and check
  // that nothing is claimed by looking.
  for (const auto& [queue, id] :
       {std::pair{standard.queue(), standard.referral_id()},
        std::pair{urgent.queue(), urgent.referral_id()}}) {
    grpc::ClientContext context;
    v1::ListQueueRequest request;
    request.set_queue(queue);
    v1::ListQueueResponse response;
    ASSERT_TRUE(clients_->triage->ListQueue(&context, request, &response).ok());
    ASSERT_GE(response.entries_size(), 1);
    EXPECT_EQ(response.entries(0).referral_id(),
              standard.queue() == urgent.queue() ? urgent.referral_id() : id);
    EXPECT_EQ(Status(id).state(), v1::REFERRAL_STATE_QUEUED);
  }
}

TEST_F(BrokerServicesTest, ListQueueShowsInitialsAndAgesNotNames) {
  v1::SubmitReferralResponse submitted =
      SubmitOk({.given_name = "Zelda", .family_name = "Quinn", .age_years = 8},
               "list-1");
  grpc::ClientContext context;
  v1::ListQueueRequest request;
  request.set_queue(submitted.queue());
  v1::ListQueueResponse response;
  ASSERT_TRUE(clients_->triage->ListQueue(&context, request, &response).ok());
  ASSERT_EQ(response.entries_size(), 1);
  const v1::QueueEntry& entry = response.entries(0);
  ASSERT_EQ(entry.children_size(), 1);
  EXPECT_EQ(entry.children(0).initials(), "ZQ");
  EXPECT_GE(entry.children(0).age_years(), 7);
  EXPECT_LE(entry.children(0).age_years(), 8);
  EXPECT_EQ(entry.agency_type(), v1::AGENCY_TYPE_POLICE);
  EXPECT_THAT(entry.concerns(),
              ElementsAre(v1::CONCERN_CATEGORY_DOMESTIC_ABUSE));
  EXPECT_EQ(response.ready_count(), 1);
}

TEST_F(BrokerServicesTest, ListingAnUnknownQueueIsNotFound) {
  grpc::ClientContext context;
  v1::ListQueueRequest request;
  request.set_queue("no-such-queue");
  v1::ListQueueResponse response;
  EXPECT_EQ(
      clients_->triage->ListQueue(&context, request, &response).error_code(),
      grpc::StatusCode::NOT_FOUND);
}

TEST_F(BrokerServicesTest, ClaimLeasesInDeliveryOrderWithTokens) {
  std::vector<std::string> ids;
  std::string queue;
  for (int i = 0; i < 3; ++i) {
    v1::SubmitReferralResponse response =
        SubmitOk({}, absl::StrCat("claim-", i));
    ids.push_back(response.referral_id());
    queue = response.queue();
  }
  v1::ClaimReferralsResponse response;
  ASSERT_TRUE(Claim(queue, 2, &response).ok());
  ASSERT_EQ(response.claims_size(), 2);
  EXPECT_EQ(response.claims(0).referral_id(), ids[0]);
  EXPECT_EQ(response.claims(1).referral_id(), ids[1]);
  for (const auto& claim : response.claims()) {
    EXPECT_FALSE(claim.lease_token().empty());
    EXPECT_EQ(claim.delivery_attempt(), 1);
    EXPECT_EQ(claim.referral().children(0).given_name(), "Testchild");
    EXPECT_EQ(Status(claim.referral_id()).state(), v1::REFERRAL_STATE_CLAIMED);
  }
  EXPECT_NE(response.claims(0).lease_token(), response.claims(1).lease_token());
  v1::QueueStats stats = Stats(queue);
  EXPECT_EQ(stats.ready_count(), 1);
  EXPECT_EQ(stats.claimed_count(), 2);
}

TEST_F(BrokerServicesTest, ClaimingFromAnEmptyQueueReturnsNothing) {
  v1::SubmitReferralResponse submitted = SubmitOk({}, "empty-1");
  ClaimOne(submitted.queue());
  v1::ClaimReferralsResponse response;
  ASSERT_TRUE(Claim(submitted.queue(), 5, &response).ok());
  EXPECT_EQ(response.claims_size(), 0);
}

TEST_F(BrokerServicesTest, BadClaimRequestsNameTheirFields) {
  v1::ClaimReferralsResponse response;
  grpc::Status status = Claim("ifd-triage", 0, &response, -1, "");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("max"));
  EXPECT_THAT(status.error_message(), HasSubstr("lease_seconds"));
  EXPECT_THAT(status.error_message(), HasSubstr("worker"));
  EXPECT_EQ(Claim("Bad Queue!", 1, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Claim("no-such-queue", 1, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(BrokerServicesTest, AStaleOrWrongTokenChangesNothing) {
  v1::SubmitReferralResponse submitted = SubmitOk({}, "token-1");
  v1::ClaimedReferral claimed = ClaimOne(submitted.queue());
  grpc::Status status = Decide(claimed.referral_id(), "not-the-token");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  v1::ReleaseReferralResponse release;
  EXPECT_EQ(
      Release(claimed.referral_id(), "not-the-token", &release).error_code(),
      grpc::StatusCode::FAILED_PRECONDITION);
  v1::GetReferralStatusResponse after = Status(claimed.referral_id());
  EXPECT_EQ(after.state(), v1::REFERRAL_STATE_CLAIMED);
  EXPECT_THAT(Stages(after), ElementsAre(v1::STAGE_RECEIVED, v1::STAGE_ROUTED,
                                         v1::STAGE_CLAIMED));

  // Once decided, the old token cannot decide again.
  ASSERT_TRUE(Decide(claimed.referral_id(), claimed.lease_token()).ok());
  EXPECT_EQ(Decide(claimed.referral_id(), claimed.lease_token()).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(BrokerServicesTest, DecideNeedsADecisionAndARationale) {
  grpc::ClientContext context;
  v1::RecordDecisionRequest request;
  request.set_referral_id("REF-2026-000001");
  request.set_lease_token("token");
  v1::RecordDecisionResponse response;
  grpc::Status status =
      clients_->triage->RecordDecision(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("decision"));
  EXPECT_THAT(status.error_message(), HasSubstr("rationale"));
}

TEST_F(BrokerServicesTest, DecidingAnUnknownReferralIsNotFound) {
  EXPECT_EQ(Decide("REF-2026-424242", "token").error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(BrokerServicesTest, ExtendMovesTheLeaseExpiry) {
  v1::SubmitReferralResponse submitted = SubmitOk({}, "extend-1");
  v1::ClaimedReferral claimed = ClaimOne(submitted.queue(), 60);
  grpc::ClientContext context;
  v1::ExtendClaimRequest request;
  request.set_referral_id(claimed.referral_id());
  request.set_lease_token(claimed.lease_token());
  request.set_lease_seconds(3600);
  v1::ExtendClaimResponse response;
  ASSERT_TRUE(clients_->triage->ExtendClaim(&context, request, &response).ok());
  EXPECT_GT(response.lease_expires_at().seconds(),
            claimed.lease_expires_at().seconds() + 3000);

  grpc::ClientContext wrong_context;
  request.set_lease_token("wrong");
  EXPECT_EQ(clients_->triage->ExtendClaim(&wrong_context, request, &response)
                .error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(BrokerServicesTest, ReleaseReturnsTheReferralToItsPlace) {
  v1::SubmitReferralResponse first = SubmitOk({}, "release-1");
  SubmitOk({}, "release-2");
  v1::ClaimedReferral claimed = ClaimOne(first.queue());
  ASSERT_EQ(claimed.referral_id(), first.referral_id());
  v1::ReleaseReferralResponse released;
  ASSERT_TRUE(
      Release(claimed.referral_id(), claimed.lease_token(), &released).ok());
  EXPECT_EQ(released.state(), v1::REFERRAL_STATE_QUEUED);

  v1::ClaimedReferral again = ClaimOne(first.queue());
  EXPECT_EQ(again.referral_id(), first.referral_id());
  EXPECT_EQ(again.delivery_attempt(), 2);
  EXPECT_NE(again.lease_token(), claimed.lease_token());
  EXPECT_EQ(Status(first.referral_id()).history(3).stage(), v1::STAGE_RELEASED);
}

TEST_F(BrokerServicesTest, RepeatedFailedDeliveriesDeadLetterThenRequeue) {
  v1::SubmitReferralResponse submitted = SubmitOk({}, "dead-1");
  v1::ReleaseReferralResponse released;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    v1::ClaimedReferral claimed = ClaimOne(submitted.queue());
    ASSERT_EQ(claimed.delivery_attempt(), attempt);
    ASSERT_TRUE(
        Release(claimed.referral_id(), claimed.lease_token(), &released).ok());
  }
  EXPECT_EQ(released.state(), v1::REFERRAL_STATE_DEAD_LETTERED);
  EXPECT_EQ(Stats(submitted.queue()).dead_letter_count(), 1);
  EXPECT_EQ(Stats(submitted.queue()).ready_count(), 0);

  grpc::ClientContext list_context;
  v1::ListDeadLettersRequest list;
  list.set_queue(submitted.queue());
  v1::ListDeadLettersResponse dead;
  ASSERT_TRUE(
      clients_->operations->ListDeadLetters(&list_context, list, &dead).ok());
  ASSERT_EQ(dead.dead_letters_size(), 1);
  EXPECT_EQ(dead.dead_letters(0).referral_id(), submitted.referral_id());
  EXPECT_EQ(dead.dead_letters(0).delivery_attempts(), 3);

  grpc::ClientContext requeue_context;
  v1::RequeueDeadLetterRequest requeue;
  requeue.set_referral_id(submitted.referral_id());
  v1::RequeueDeadLetterResponse requeued;
  ASSERT_TRUE(clients_->operations
                  ->RequeueDeadLetter(&requeue_context, requeue, &requeued)
                  .ok());
  EXPECT_EQ(requeued.queue(), submitted.queue());
  EXPECT_EQ(Status(submitted.referral_id()).state(), v1::REFERRAL_STATE_QUEUED);
  EXPECT_EQ(Stats(submitted.queue()).dead_letter_count(), 0);

  grpc::ClientContext again_context;
  EXPECT_EQ(clients_->operations
                ->RequeueDeadLetter(&again_context, requeue, &requeued)
                .error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(BrokerServicesTest, AnExpiredLeaseReturnsTheReferralToTheQueue) {
  v1::SubmitReferralResponse submitted = SubmitOk({}, "expire-1");
  v1::ClaimedReferral claimed = ClaimOne(submitted.queue(), 1);
  ASSERT_TRUE(Eventually([&] {
    return Status(submitted.referral_id()).state() == v1::REFERRAL_STATE_QUEUED;
  }));
  v1::GetReferralStatusResponse status = Status(submitted.referral_id());
  EXPECT_EQ(status.history(status.history_size() - 1).stage(),
            v1::STAGE_LEASE_EXPIRED);
  // The expired token is now stale.
  EXPECT_EQ(Decide(claimed.referral_id(), claimed.lease_token()).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ClaimOne(submitted.queue()).delivery_attempt(), 2);
}

TEST_F(BrokerServicesTest, OutcomesWaitUntilTheReferrerAcknowledges) {
  v1::SubmitReferralResponse submitted =
      SubmitOk({.agency_id = "cambs-police"}, "outcome-1");
  v1::ClaimedReferral claimed = ClaimOne(submitted.queue());

  auto list_outcomes = [&](const std::string& agency) {
    grpc::ClientContext context;
    v1::ListOutcomesRequest request;
    request.set_agency(agency);
    v1::ListOutcomesResponse response;
    EXPECT_TRUE(
        clients_->intake->ListOutcomes(&context, request, &response).ok());
    return response;
  };
  EXPECT_EQ(list_outcomes("cambs-police").outcomes_size(), 0);

  grpc::ClientContext early_context;
  v1::AcknowledgeOutcomeRequest ack;
  ack.set_referral_id(submitted.referral_id());
  v1::AcknowledgeOutcomeResponse ack_response;
  EXPECT_EQ(
      clients_->intake->AcknowledgeOutcome(&early_context, ack, &ack_response)
          .error_code(),
      grpc::StatusCode::FAILED_PRECONDITION);

  ASSERT_TRUE(Decide(claimed.referral_id(), claimed.lease_token(),
                     v1::DECISION_CHILD_IN_NEED_ASSESSMENT)
                  .ok());
  v1::ListOutcomesResponse outcomes = list_outcomes("cambs-police");
  ASSERT_EQ(outcomes.outcomes_size(), 1);
  EXPECT_EQ(outcomes.outcomes(0).referral_id(), submitted.referral_id());
  EXPECT_EQ(outcomes.outcomes(0).decision(),
            v1::DECISION_CHILD_IN_NEED_ASSESSMENT);
  EXPECT_EQ(outcomes.outcomes(0).referrer_reference(), "TEST-INC-0001");
  EXPECT_EQ(list_outcomes("school-one").outcomes_size(), 0);

  grpc::ClientContext ack_context;
  ASSERT_TRUE(
      clients_->intake->AcknowledgeOutcome(&ack_context, ack, &ack_response)
          .ok());
  EXPECT_FALSE(ack_response.already_acknowledged());
  EXPECT_EQ(list_outcomes("cambs-police").outcomes_size(), 0);

  grpc::ClientContext again_context;
  v1::AcknowledgeOutcomeResponse again;
  ASSERT_TRUE(
      clients_->intake->AcknowledgeOutcome(&again_context, ack, &again).ok());
  EXPECT_TRUE(again.already_acknowledged());
  EXPECT_EQ(again.acknowledged_at().seconds(),
            ack_response.acknowledged_at().seconds());
}

TEST_F(BrokerServicesTest, ListOutcomesNeedsAnAgency) {
  grpc::ClientContext context;
  v1::ListOutcomesResponse response;
  grpc::Status status = clients_->intake->ListOutcomes(
      &context, v1::ListOutcomesRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("agency"));
}

TEST_F(BrokerServicesTest, StatsCountReadyClaimedAndOldestAge) {
  v1::SubmitReferralResponse first = SubmitOk({}, "stats-1");
  SubmitOk({}, "stats-2");
  ClaimOne(first.queue());
  v1::QueueStats stats = Stats(first.queue());
  EXPECT_EQ(stats.ready_count(), 1);
  EXPECT_EQ(stats.claimed_count(), 1);
  EXPECT_EQ(stats.dead_letter_count(), 0);
  EXPECT_EQ(stats.overdue_count(), 0);
  EXPECT_GE(stats.oldest_ready_age().seconds(), 0);
}

TEST_F(BrokerServicesTest, WatchStreamsQueueEventsLive) {
  v1::SubmitReferralResponse first = SubmitOk({}, "watch-0");
  const std::string queue = first.queue();

  grpc::ClientContext watch_context;
  v1::WatchQueueRequest request;
  request.set_queue(queue);
  auto reader = clients_->triage->WatchQueue(&watch_context, request);
  reader->WaitForInitialMetadata();

  v1::SubmitReferralResponse submitted = SubmitOk({}, "watch-1");
  v1::QueueEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.kind(), v1::QueueEvent::KIND_ARRIVED);
  EXPECT_EQ(event.referral_id(), submitted.referral_id());
  EXPECT_EQ(event.queue(), queue);

  v1::ClaimedReferral claimed = ClaimOne(queue);
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.kind(), v1::QueueEvent::KIND_CLAIMED);
  EXPECT_EQ(event.referral_id(), claimed.referral_id());
  EXPECT_EQ(event.worker(), "sw.one");

  ASSERT_TRUE(Decide(claimed.referral_id(), claimed.lease_token()).ok());
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.kind(), v1::QueueEvent::KIND_DECIDED);

  watch_context.TryCancel();
  while (reader->Read(&event)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(BrokerServicesTest, OnePrincipalMayHoldOnlySoManyWatchStreams) {
  // All development callers are one principal.
  struct Watch {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::QueueEvent>> reader;
  };
  std::vector<std::unique_ptr<Watch>> watches;
  v1::WatchQueueRequest request;
  request.set_queue("ifd-triage");
  for (int i = 0; i < 32; ++i) {
    auto watch = std::make_unique<Watch>();
    watch->reader = clients_->triage->WatchQueue(&watch->context, request);
    watch->reader->WaitForInitialMetadata();
    watches.push_back(std::move(watch));
  }
  grpc::ClientContext refused_context;
  auto refused = clients_->triage->WatchQueue(&refused_context, request);
  v1::QueueEvent event;
  EXPECT_FALSE(refused->Read(&event));
  grpc::Status status = refused->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("watch streams"));

  // Closing one makes room for another.
  watches.back()->context.TryCancel();
  while (watches.back()->reader->Read(&event)) {
  }
  watches.back()->reader->Finish();
  watches.pop_back();
  ASSERT_TRUE(Eventually([&] {
    grpc::ClientContext context;
    auto again = clients_->triage->WatchQueue(&context, request);
    again->WaitForInitialMetadata();
    context.TryCancel();
    while (again->Read(&event)) {
    }
    return again->Finish().error_code() == grpc::StatusCode::CANCELLED;
  }));
  for (auto& watch : watches) watch->context.TryCancel();
  for (auto& watch : watches) {
    while (watch->reader->Read(&event)) {
    }
    watch->reader->Finish();
  }
}

TEST_F(BrokerServicesTest, WatchingAnUnknownQueueIsNotFound) {
  grpc::ClientContext context;
  v1::WatchQueueRequest request;
  request.set_queue("no-such-queue");
  auto reader = clients_->triage->WatchQueue(&context, request);
  v1::QueueEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(BrokerServicesTest, EverythingSurvivesARestart) {
  v1::SubmitReferralResponse queued = SubmitOk({}, "restart-1");
  v1::SubmitReferralResponse claimed_one = SubmitOk({}, "restart-2");
  v1::ClaimReferralsResponse claims;
  ASSERT_TRUE(Claim(queued.queue(), 1, &claims, 3600).ok());
  ASSERT_EQ(claims.claims_size(), 1);
  const v1::ClaimedReferral claim = claims.claims(0);

  RestartBroker();

  EXPECT_EQ(Status(claim.referral_id()).state(), v1::REFERRAL_STATE_CLAIMED);
  // The lease survived: its token still decides.
  EXPECT_TRUE(Decide(claim.referral_id(), claim.lease_token()).ok());
  // The idempotency key survived.
  EXPECT_TRUE(SubmitOk({}, "restart-1").duplicate());
  // New referrals never reuse a reference.
  v1::SubmitReferralResponse fresh = SubmitOk({}, "restart-3");
  EXPECT_NE(fresh.referral_id(), queued.referral_id());
  EXPECT_NE(fresh.referral_id(), claimed_one.referral_id());
  EXPECT_EQ(Stats(queued.queue()).ready_count(), 2);
}

}  // namespace
}  // namespace referral
