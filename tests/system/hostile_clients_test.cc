// Hostile and unlucky clients against a real broker process: oversized and
// malformed requests, streams that never read, calls abandoned mid-flight,
// deadlines that expire during a commit and a storm of claims with tiny
// leases. Each must leave the broker serving, store nothing half-made, and
// keep every acknowledged referral exactly once.
#include <grpcpp/generic/generic_stub.h>
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
#include "gtest/gtest.h"
#include "support/broker_process.h"
#include "support/sample_referral.h"

namespace referral {
namespace {

using ::referral::testing::BrokerClients;
using ::referral::testing::BrokerProcess;
using ::referral::testing::SampleReferral;
using ::referral::testing::TempDir;
using ::testing::HasSubstr;

constexpr char kQueue[] = "ifd-triage";

class HostileClientsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = BrokerProcess::Start({
        .data_dir = dir_.Sub("data"),
        // The storm below is one principal in development mode; the rate
        // limit (tested elsewhere) would otherwise be what it meets.
        .flags = {"--max_message_bytes=1048576", "--lease_check_ms=50",
                  "--shutdown_grace_seconds=1",
                  "--rate_limit_per_second=100000",
                  "--rate_limit_burst=100000"},
        .log_file = dir_.Sub("broker.log"),
    });
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
    clients_ = std::make_unique<BrokerClients>(broker_->address());
  }

  grpc::Status Submit(const v1::SubmitReferralRequest& request,
                      v1::SubmitReferralResponse* response = nullptr,
                      absl::Duration deadline = absl::Seconds(30)) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    v1::SubmitReferralResponse ignored;
    return clients_->intake->SubmitReferral(
        &context, request, response != nullptr ? response : &ignored);
  }

  static v1::SubmitReferralRequest Request(const std::string& key) {
    v1::SubmitReferralRequest request;
    *request.mutable_referral() = SampleReferral();
    request.set_idempotency_key(key);
    return request;
  }

  // SubmitReferral with a request body written byte by byte, as a client
  // in another language (or an attacker) could send it.
  grpc::Status SubmitBytes(const std::string& bytes) {
    grpc::GenericStub generic(clients_->channel);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::Slice slice(bytes);
    grpc::ByteBuffer sent(&slice, 1);
    grpc::ByteBuffer received;
    absl::Mutex mu;
    bool done = false;
    grpc::Status status;
    generic.UnaryCall(&context, "/referral.v1.ReferralIntake/SubmitReferral",
                      grpc::StubOptions(), &sent, &received,
                      [&](grpc::Status s) {
                        absl::MutexLock lock(&mu);
                        status = s;
                        done = true;
                      });
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&done));
    return status;
  }

  // Ready + claimed in the test queue: every referral stored there.
  int64_t StoredInQueue() {
    grpc::ClientContext context;
    v1::GetQueueStatsResponse stats;
    EXPECT_TRUE(clients_->operations->GetQueueStats(&context, {}, &stats).ok());
    for (const v1::QueueStats& queue : stats.queues()) {
      if (queue.queue() == kQueue) {
        return queue.ready_count() + queue.claimed_count();
      }
    }
    return 0;
  }

  // The broker still answers and commits.
  void ExpectStillServing() {
    v1::SubmitReferralResponse response;
    grpc::Status status = Submit(
        Request(absl::StrCat("still-serving-", serving_checks_++)), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }

  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<BrokerClients> clients_;
  int serving_checks_ = 0;
};

TEST_F(HostileClientsTest, AMessageJustOverTheSizeLimitIsRefusedAndNotStored) {
  v1::SubmitReferralRequest request = Request("too-big");
  request.mutable_referral()->set_description(std::string(1048576, 'a'));
  ASSERT_GT(request.ByteSizeLong(), 1048576u);
  ASSERT_LT(request.ByteSizeLong(), 1048576u + 4096);
  EXPECT_EQ(Submit(request).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(StoredInQueue(), 0);
  ExpectStillServing();
}

TEST_F(HostileClientsTest,
       AMessageJustUnderTheLimitIsRefusedByFieldNotByCrash) {
  // Within the transport's limit, far over the description's own.
  v1::SubmitReferralRequest request = Request("big-description");
  request.mutable_referral()->set_description(std::string(1000000, 'a'));
  grpc::Status status = Submit(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("description"));
  EXPECT_EQ(StoredInQueue(), 0);
  ExpectStillServing();
}

TEST_F(HostileClientsTest, InvalidUtf8IsRefusedAndNotStored) {
  // Written as raw bytes, as a client in another language could send them:
  // the C++ serializer would only log about it.
  v1::SubmitReferralRequest request = Request("bad-utf8");
  request.mutable_referral()->mutable_children(0)->set_given_name(
      std::string("Te\xff\xfest", 6));
  std::string bytes;
  ASSERT_TRUE(request.SerializeToString(&bytes));
  grpc::Status status = SubmitBytes(bytes);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << "the broker must refuse the request, not fall over";
  EXPECT_EQ(StoredInQueue(), 0);
  ExpectStillServing();
}

TEST_F(HostileClientsTest, HugeRepeatedFieldsAreRefusedByCount) {
  v1::SubmitReferralRequest request = Request("many-children");
  const v1::Child child = request.referral().children(0);
  for (int i = 0; i < 5000; ++i) {
    *request.mutable_referral()->add_children() = child;
  }
  grpc::Status status = Submit(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("children"));
  EXPECT_EQ(StoredInQueue(), 0);
  ExpectStillServing();
}

TEST_F(HostileClientsTest, DeeplyNestedUnknownFieldsAreRefused) {
  // 200 nested unknown groups (field 999, wire types 3 and 4) after the
  // request: protobuf's recursion limit (100) must stop the parse rather
  // than the stack.
  std::string nested;
  for (int i = 0; i < 200; ++i) nested += "\xbb\x3e";  // start group 999
  for (int i = 0; i < 200; ++i) nested += "\xbc\x3e";  // end group 999
  std::string bytes;
  ASSERT_TRUE(Request("nested").SerializeToString(&bytes));
  bytes += nested;
  grpc::Status status = SubmitBytes(bytes);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(StoredInQueue(), 0);
  ExpectStillServing();
}

TEST_F(HostileClientsTest, WatchStreamsThatNeverReadCannotStallTheBroker) {
  // As many streams as one principal may open, none of them ever read.
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::QueueEvent>>> streams;
  for (int i = 0; i < 32; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    v1::WatchQueueRequest request;
    request.set_queue(kQueue);
    streams.push_back(
        clients_->triage->WatchQueue(contexts.back().get(), request));
    // Headers come once the broker has counted the stream; without waiting,
    // the broker may see the streams in another order than they were opened
    // and refuse an earlier one instead of the one below.
    streams.back()->WaitForInitialMetadata();
  }
  // One more is refused: the limit protects the broker's memory.
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    v1::WatchQueueRequest request;
    request.set_queue(kQueue);
    auto refused = clients_->triage->WatchQueue(&context, request);
    v1::QueueEvent event;
    EXPECT_FALSE(refused->Read(&event));
    EXPECT_EQ(refused->Finish().error_code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  // Traffic flows regardless: each stream's backlog is bounded and a
  // stream that falls too far behind is closed, not waited for.
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(Submit(Request(absl::StrCat("while-watched-", i))).ok()) << i;
  }
  EXPECT_EQ(StoredInQueue(), 300);
  for (auto& context : contexts) context->TryCancel();
}

TEST_F(HostileClientsTest, AbandonedCallsLandAtMostOnceAndAreFoundByKey) {
  // Deadlines far shorter than a synced commit: the client gives up while
  // the broker may still commit. Retrying with the same key must find the
  // referral if it landed, or create it once if it did not.
  std::set<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    const v1::SubmitReferralRequest request =
        Request(absl::StrCat("abandoned-", i));
    (void)Submit(request, nullptr, absl::Microseconds(300));
    v1::SubmitReferralResponse retried;
    grpc::Status status = Submit(request, &retried);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ids.insert(retried.referral_id());
    // And once more: the same referral, now certainly a duplicate.
    v1::SubmitReferralResponse again;
    ASSERT_TRUE(Submit(request, &again).ok());
    EXPECT_EQ(again.referral_id(), retried.referral_id());
    EXPECT_TRUE(again.duplicate());
  }
  EXPECT_EQ(ids.size(), 50u);
  EXPECT_EQ(StoredInQueue(), 50);
}

TEST_F(HostileClientsTest, AClaimStormWithTinyLeasesLosesAndDuplicatesNothing) {
  constexpr int kReferrals = 60;
  for (int i = 0; i < kReferrals; ++i) {
    ASSERT_TRUE(Submit(Request(absl::StrCat("storm-", i))).ok());
  }
  // Eight workers claiming with one-second leases and never deciding, so
  // leases keep expiring under them, plus one deciding what it holds.
  std::atomic<bool> stop{false};
  absl::Mutex mu;
  std::map<std::string, int> decided;  // referral id -> decisions that said OK
  std::vector<std::thread> workers;
  for (int w = 0; w < 9; ++w) {
    workers.emplace_back([&, w] {
      BrokerClients clients(broker_->address());
      while (!stop.load()) {
        grpc::ClientContext context;
        v1::ClaimReferralsRequest request;
        request.set_queue(kQueue);
        request.set_max(5);
        request.set_lease_seconds(1);
        request.set_worker(absl::StrCat("storm-", w));
        v1::ClaimReferralsResponse response;
        if (!clients.triage->ClaimReferrals(&context, request, &response)
                 .ok() ||
            response.claims().empty()) {
          // A polling worker waits a little when there is nothing to take.
          absl::SleepFor(absl::Milliseconds(20));
          continue;
        }
        if (w != 0) continue;
        for (const v1::ClaimedReferral& claim : response.claims()) {
          grpc::ClientContext decide_context;
          v1::RecordDecisionRequest decide;
          decide.set_referral_id(claim.referral_id());
          decide.set_lease_token(claim.lease_token());
          decide.set_decision(v1::DECISION_EARLY_HELP);
          decide.set_rationale("Fictitious rationale.");
          v1::RecordDecisionResponse decided_response;
          if (clients.triage
                  ->RecordDecision(&decide_context, decide, &decided_response)
                  .ok()) {
            absl::MutexLock lock(&mu);
            ++decided[claim.referral_id()];
          }
        }
      }
    });
  }
  const absl::Time until = absl::Now() + absl::Seconds(4);
  while (absl::Now() < until && StoredInQueue() > 0) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  stop = true;
  for (std::thread& worker : workers) worker.join();

  // No referral decided twice; every referral either decided or still in
  // the queue (ready, claimed or dead-lettered after too many expiries).
  absl::MutexLock lock(&mu);
  for (const auto& [id, times] : decided) EXPECT_EQ(times, 1) << id;
  grpc::ClientContext context;
  v1::GetQueueStatsResponse stats;
  ASSERT_TRUE(clients_->operations->GetQueueStats(&context, {}, &stats).ok());
  int64_t accounted = static_cast<int64_t>(decided.size());
  for (const v1::QueueStats& queue : stats.queues()) {
    if (queue.queue() != kQueue) continue;
    accounted +=
        queue.ready_count() + queue.claimed_count() + queue.dead_letter_count();
  }
  EXPECT_EQ(accounted, kReferrals);
  ExpectStillServing();
}

}  // namespace
}  // namespace referral
