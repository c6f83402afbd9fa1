// The timeliness and feedback figures over real gRPC: GetQueueStats' overdue
// and due-soon counts, time-to-decision percentiles and referrer-feedback
// backlog; GetReferralStatus' time to feedback; and Triage.ListNotices for
// the emergency duty team told of an out-of-hours referral. The broker's
// clock is set by each test, so that working hours, due times and every
// measured duration are exact.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "referral/v1/broker.grpc.pb.h"
#include "server/broker.h"
#include "support/broker_process.h"
#include "support/civil_time.h"
#include "support/sample_referral.h"

namespace referral {
namespace {

using ::referral::testing::BrokerClients;
using ::referral::testing::SampleReferral;
using ::referral::testing::SampleReferralOptions;
using ::referral::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kTriage[] = "ifd-triage";
constexpr char kEdt[] = "edt-out-of-hours";

using ::referral::testing::FromProto;
using ::referral::testing::London;

std::vector<std::string> NoticeIds(const v1::ListNoticesResponse& response) {
  std::vector<std::string> ids;
  for (const v1::Notice& notice : response.notices()) {
    ids.push_back(notice.entry().referral_id());
  }
  return ids;
}

class OperationsServiceTest : public ::testing::Test {
 protected:
  // Tuesday 24 November 2026, 10:00 in London: inside working hours.
  OperationsServiceTest() { SetNow(London(2026, 11, 24, 10)); }

  void SetUp() override { StartBroker(); }

  void SetNow(absl::Time t) { now_us_ = absl::ToUnixMicros(t); }
  void Advance(absl::Duration d) { now_us_ += absl::ToInt64Microseconds(d); }
  absl::Time Now() const { return absl::FromUnixMicros(now_us_.load()); }

  void StartBroker(absl::Duration outcome_ack_overdue = absl::Hours(24)) {
    clients_.reset();
    broker_.reset();
    server::BrokerOptions options;
    options.settings.set_insecure_development(true);
    options.settings.set_listen("127.0.0.1:0");
    options.settings.set_data_dir(dir_.Sub("data"));
    options.settings.set_shutdown_grace_seconds(1);
    options.settings.set_outcome_ack_overdue_hours(
        absl::ToInt64Hours(outcome_ack_overdue));
    options.clock = [this] { return Now(); };
    auto broker = server::Broker::Start(options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
    clients_ = std::make_unique<BrokerClients>(
        absl::StrCat("127.0.0.1:", broker_->port()));
  }

  // Submits a referral with its own child (so no repeated-concern link
  // changes its band); returns the reference.
  std::string Submit(const std::string& key,
                     const std::string& agency = "cambs-police") {
    grpc::ClientContext context;
    v1::SubmitReferralRequest request;
    *request.mutable_referral() =
        SampleReferral({.agency_id = agency,
                        .nhs_number = "",
                        .family_name = absl::StrCat("Fictitious-", key)});
    request.set_idempotency_key(key);
    v1::SubmitReferralResponse response;
    grpc::Status status =
        clients_->intake->SubmitReferral(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.referral_id();
  }

  // Claims the head of `queue` and decides it at the current time; returns
  // the reference.
  std::string ClaimAndDecide(const std::string& queue = kTriage) {
    v1::ClaimReferralsResponse claims;
    {
      grpc::ClientContext context;
      v1::ClaimReferralsRequest request;
      request.set_queue(queue);
      request.set_max(1);
      request.set_worker("sw.triage");
      grpc::Status status =
          clients_->triage->ClaimReferrals(&context, request, &claims);
      EXPECT_TRUE(status.ok()) << status.error_message();
    }
    if (claims.claims_size() != 1) {
      ADD_FAILURE() << "nothing to claim in " << queue;
      return "";
    }
    grpc::ClientContext context;
    v1::RecordDecisionRequest request;
    request.set_referral_id(claims.claims(0).referral_id());
    request.set_lease_token(claims.claims(0).lease_token());
    request.set_decision(v1::DECISION_INFORMATION_AND_ADVICE);
    request.set_rationale("Advice given to the family.");
    request.set_feedback("Advice given; thank you for the referral.");
    v1::RecordDecisionResponse response;
    grpc::Status status =
        clients_->triage->RecordDecision(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return claims.claims(0).referral_id();
  }

  void Acknowledge(const std::string& id) {
    grpc::ClientContext context;
    v1::AcknowledgeOutcomeRequest request;
    request.set_referral_id(id);
    v1::AcknowledgeOutcomeResponse response;
    grpc::Status status =
        clients_->intake->AcknowledgeOutcome(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
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

  v1::GetQueueStatsResponse AllStats() {
    grpc::ClientContext context;
    v1::GetQueueStatsResponse response;
    grpc::Status status = clients_->operations->GetQueueStats(
        &context, v1::GetQueueStatsRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  v1::QueueStats Stats(const std::string& queue) {
    const v1::GetQueueStatsResponse response = AllStats();
    for (const v1::QueueStats& stats : response.queues()) {
      if (stats.queue() == queue) return stats;
    }
    ADD_FAILURE() << "no stats for " << queue;
    return v1::QueueStats();
  }

  grpc::Status ListNotices(const std::string& queue, int page_size,
                           const std::string& page_token,
                           v1::ListNoticesResponse* response) {
    grpc::ClientContext context;
    v1::ListNoticesRequest request;
    request.set_queue(queue);
    request.mutable_page()->set_page_size(page_size);
    request.mutable_page()->set_page_token(page_token);
    return clients_->triage->ListNotices(&context, request, response);
  }

  TempDir dir_;
  std::atomic<int64_t> now_us_{0};
  std::unique_ptr<server::Broker> broker_;
  std::unique_ptr<BrokerClients> clients_;
};

TEST_F(OperationsServiceTest, OverdueAndDueWithinTheHourFollowTheClock) {
  // Due one working day later: Wednesday 10:00.
  Submit("a");
  SetNow(London(2026, 11, 24, 11));
  Submit("b");  // due Wednesday 11:00
  EXPECT_EQ(Stats(kTriage).overdue_count(), 0);
  EXPECT_EQ(Stats(kTriage).due_within_hour_count(), 0);

  SetNow(London(2026, 11, 25, 9, 30));
  EXPECT_EQ(Stats(kTriage).due_within_hour_count(), 1);
  SetNow(London(2026, 11, 25, 10, 30));
  v1::QueueStats stats = Stats(kTriage);
  EXPECT_EQ(stats.overdue_count(), 1);
  EXPECT_EQ(stats.due_within_hour_count(), 1);
  SetNow(London(2026, 11, 25, 11));
  EXPECT_EQ(Stats(kTriage).overdue_count(), 2);  // due at or before now
  EXPECT_EQ(Stats(kTriage).due_within_hour_count(), 0);

  // Claimed referrals still count until decided.
  ClaimAndDecide();
  v1::ClaimReferralsResponse claims;
  grpc::ClientContext context;
  v1::ClaimReferralsRequest request;
  request.set_queue(kTriage);
  request.set_max(1);
  request.set_worker("sw.triage");
  ASSERT_TRUE(
      clients_->triage->ClaimReferrals(&context, request, &claims).ok());
  stats = Stats(kTriage);
  EXPECT_EQ(stats.ready_count(), 0);
  EXPECT_EQ(stats.claimed_count(), 1);
  EXPECT_EQ(stats.overdue_count(), 1);
}

TEST_F(OperationsServiceTest, TimeToDecisionPercentilesPerQueue) {
  const absl::Time received = Now();
  for (int i = 0; i < 10; ++i) Submit(absl::StrCat("ttd-", i));
  // Decisions 30 minutes apart: 30 minutes to 5 hours after receipt.
  for (int i = 1; i <= 10; ++i) {
    SetNow(received + absl::Minutes(30) * i);
    ClaimAndDecide();
  }
  v1::QueueStats stats = Stats(kTriage);
  EXPECT_EQ(stats.decisions_in_window(), 10);
  EXPECT_EQ(FromProto(stats.decision_window()), absl::Hours(24 * 28));
  // Nearest rank: the 5th, 9th and 10th of ten.
  EXPECT_EQ(FromProto(stats.time_to_decision_p50()), absl::Minutes(150));
  EXPECT_EQ(FromProto(stats.time_to_decision_p90()), absl::Minutes(270));
  EXPECT_EQ(FromProto(stats.time_to_decision_p99()), absl::Minutes(300));

  // Queues without decisions report none, and the window all the same.
  v1::QueueStats urgent = Stats("ifd-urgent");
  EXPECT_EQ(urgent.decisions_in_window(), 0);
  EXPECT_FALSE(urgent.has_time_to_decision_p50());
  EXPECT_EQ(FromProto(urgent.decision_window()), absl::Hours(24 * 28));

  // Past the window the figures empty out; a restart changes nothing.
  SetNow(received + absl::Minutes(150) + absl::Hours(24 * 28));
  EXPECT_EQ(Stats(kTriage).decisions_in_window(), 6);
  StartBroker();
  stats = Stats(kTriage);
  EXPECT_EQ(stats.decisions_in_window(), 6);
  EXPECT_EQ(FromProto(stats.time_to_decision_p50()), absl::Minutes(210));
  SetNow(received + absl::Hours(24 * 29));
  EXPECT_EQ(Stats(kTriage).decisions_in_window(), 0);
  EXPECT_FALSE(Stats(kTriage).has_time_to_decision_p99());
}

TEST_F(OperationsServiceTest, UnacknowledgedOutcomesShowAsFeedbackBacklog) {
  v1::GetQueueStatsResponse response = AllStats();
  EXPECT_THAT(response.feedback(), IsEmpty());
  EXPECT_EQ(FromProto(response.outcome_ack_overdue_after()), absl::Hours(24));

  const absl::Time received = Now();
  const std::string police_one = Submit("p1", "cambs-police");
  const std::string police_two = Submit("p2", "cambs-police");
  const std::string school = Submit("s1", "school-one");
  Advance(absl::Hours(2));
  EXPECT_EQ(ClaimAndDecide(), police_one);
  Advance(absl::Hours(1));
  EXPECT_EQ(ClaimAndDecide(), police_two);
  EXPECT_EQ(ClaimAndDecide(), school);

  // 24.5 hours after the first decision and 23.5 after the others: only
  // the first is overdue.
  SetNow(received + absl::Minutes(26 * 60 + 30));
  response = AllStats();
  ASSERT_EQ(response.feedback_size(), 2);
  const v1::AgencyFeedback& police = response.feedback(0);
  EXPECT_EQ(police.agency(), "cambs-police");
  EXPECT_EQ(police.unacknowledged_count(), 2);
  EXPECT_EQ(police.overdue_count(), 1);
  EXPECT_EQ(FromProto(police.oldest_unacknowledged_age()),
            absl::Minutes(24 * 60 + 30));
  EXPECT_EQ(response.feedback(1).agency(), "school-one");
  EXPECT_EQ(response.feedback(1).unacknowledged_count(), 1);
  EXPECT_EQ(response.feedback(1).overdue_count(), 0);
  EXPECT_EQ(FromProto(response.feedback(1).oldest_unacknowledged_age()),
            absl::Minutes(23 * 60 + 30));

  // The referrer acknowledges 27.5 hours after receipt: that is how long it
  // waited to be told.
  Advance(absl::Hours(1));
  Acknowledge(police_one);
  v1::GetReferralStatusResponse status = Status(police_one);
  EXPECT_EQ(status.state(), v1::REFERRAL_STATE_OUTCOME_ACKNOWLEDGED);
  EXPECT_EQ(FromProto(status.time_to_feedback()), absl::Minutes(27 * 60 + 30));
  EXPECT_FALSE(Status(police_two).has_time_to_feedback());

  response = AllStats();
  ASSERT_EQ(response.feedback_size(), 2);
  EXPECT_EQ(response.feedback(0).unacknowledged_count(), 1);
  EXPECT_EQ(response.feedback(0).overdue_count(), 1);  // decided 24.5h ago
  Acknowledge(police_two);
  Acknowledge(school);
  EXPECT_THAT(AllStats().feedback(), IsEmpty());
}

TEST_F(OperationsServiceTest, TheAcknowledgementThresholdIsConfigurable) {
  StartBroker(/*outcome_ack_overdue=*/absl::Hours(2));
  Submit("a", "school-one");
  ClaimAndDecide();
  Advance(absl::Hours(2) - absl::Seconds(1));
  EXPECT_EQ(AllStats().feedback(0).overdue_count(), 0);
  Advance(absl::Seconds(1));
  v1::GetQueueStatsResponse response = AllStats();
  EXPECT_EQ(FromProto(response.outcome_ack_overdue_after()), absl::Hours(2));
  EXPECT_EQ(response.feedback(0).overdue_count(), 1);
}

TEST_F(OperationsServiceTest, TheOutOfHoursTeamListsWhatItWasToldAbout) {
  // An in-hours referral tells the emergency duty team nothing.
  const std::string weekday = Submit("weekday");
  v1::ListNoticesResponse notices;
  ASSERT_TRUE(ListNotices(kEdt, 0, "", &notices).ok());
  EXPECT_THAT(notices.notices(), IsEmpty());

  // Saturday 28 November 2026: three referrals, five minutes apart.
  SetNow(London(2026, 11, 28, 10));
  std::vector<std::string> weekend;
  for (int i = 0; i < 3; ++i) {
    weekend.push_back(Submit(absl::StrCat("weekend-", i)));
    Advance(absl::Minutes(5));
  }
  notices.Clear();
  ASSERT_TRUE(ListNotices(kEdt, 2, "", &notices).ok());
  EXPECT_THAT(NoticeIds(notices), ElementsAre(weekend[2], weekend[1]));
  ASSERT_FALSE(notices.next_page_token().empty());
  const v1::Notice& newest = notices.notices(0);
  EXPECT_EQ(newest.state(), v1::REFERRAL_STATE_QUEUED);
  EXPECT_EQ(newest.queue(), kTriage);
  EXPECT_EQ(newest.entry().priority_band(), v1::PRIORITY_BAND_STANDARD);
  EXPECT_EQ(newest.entry().agency_type(), v1::AGENCY_TYPE_POLICE);
  ASSERT_EQ(newest.entry().children_size(), 1);
  EXPECT_EQ(newest.entry().children(0).initials().size(), 2u);
  EXPECT_EQ(newest.entry().received_at().seconds(),
            absl::ToUnixSeconds(London(2026, 11, 28, 10, 10)));

  v1::ListNoticesResponse rest;
  ASSERT_TRUE(ListNotices(kEdt, 2, notices.next_page_token(), &rest).ok());
  EXPECT_THAT(NoticeIds(rest), ElementsAre(weekend[0]));
  EXPECT_TRUE(rest.next_page_token().empty());

  v1::QueueStats edt = Stats(kEdt);
  EXPECT_EQ(edt.notices_last_24h(), 3);
  EXPECT_EQ(edt.ready_count(), 0);
  EXPECT_EQ(Stats(kTriage).notices_last_24h(), 0);

  // On Monday the front door decides the weekday referral and then the
  // first weekend one; the team sees the decision on its notice.
  SetNow(London(2026, 11, 30, 9));
  EXPECT_EQ(ClaimAndDecide(), weekday);
  EXPECT_EQ(ClaimAndDecide(), weekend[0]);
  rest.Clear();
  ASSERT_TRUE(ListNotices(kEdt, 0, "", &rest).ok());
  ASSERT_EQ(rest.notices_size(), 3);
  EXPECT_EQ(rest.notices(2).state(), v1::REFERRAL_STATE_DECIDED);
  EXPECT_EQ(rest.notices(0).state(), v1::REFERRAL_STATE_QUEUED);
  EXPECT_EQ(Stats(kEdt).notices_last_24h(), 0);  // all over a day old
}

TEST_F(OperationsServiceTest, ListNoticesChecksItsRequest) {
  v1::ListNoticesResponse response;
  EXPECT_EQ(ListNotices("", 0, "", &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ListNotices("Not A Queue", 0, "", &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ListNotices(kEdt, -1, "", &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ListNotices("nowhere", 0, "", &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::Status bad_token = ListNotices(kEdt, 0, "not-a-token", &response);
  EXPECT_EQ(bad_token.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad_token.error_message(), ::testing::HasSubstr("page_token"));
}

}  // namespace
}  // namespace referral
