// Safeguarding rules end to end through real gRPC: where the shipped
// routing sends a referral, when it is due on the working-day calendar
// (Europe/London, bank holidays, out of hours), how repeated concerns about
// a child are linked and raised, and how routing is reloaded. The broker's
// clock is set by each test so that working hours are deterministic.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
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
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using ::referral::testing::FromProto;
using ::referral::testing::London;

std::vector<v1::Stage> Stages(const v1::GetReferralStatusResponse& status) {
  std::vector<v1::Stage> stages;
  for (const auto& event : status.history()) stages.push_back(event.stage());
  return stages;
}

class IntakeRoutingTest : public ::testing::Test {
 protected:
  // Tuesday 24 November 2026, 10:00 in London: inside working hours.
  IntakeRoutingTest() { SetNow(London(2026, 11, 24, 10)); }

  void SetNow(absl::Time t) { now_us_ = absl::ToUnixMicros(t); }
  void Advance(absl::Duration d) { now_us_ += absl::ToInt64Microseconds(d); }

  void StartBroker(const std::string& routing_file = "") {
    server::BrokerOptions options;
    options.settings.set_insecure_development(true);
    options.settings.set_listen("127.0.0.1:0");
    options.settings.set_data_dir(dir_.Sub("data"));
    options.settings.set_routing_file(routing_file);
    options.settings.set_shutdown_grace_seconds(1);
    options.clock = [this] { return absl::FromUnixMicros(now_us_.load()); };
    auto broker = server::Broker::Start(options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
    clients_ = std::make_unique<BrokerClients>(
        absl::StrCat("127.0.0.1:", broker_->port()));
  }

  void SetUp() override { StartBroker(); }

  v1::SubmitReferralResponse Submit(const v1::Referral& referral,
                                    const std::string& key) {
    grpc::ClientContext context;
    v1::SubmitReferralRequest request;
    *request.mutable_referral() = referral;
    request.set_idempotency_key(key);
    v1::SubmitReferralResponse response;
    grpc::Status status =
        clients_->intake->SubmitReferral(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  v1::GetReferralStatusResponse Status(const std::string& id) {
    grpc::ClientContext context;
    v1::GetReferralStatusRequest request;
    request.set_referral_id(id);
    v1::GetReferralStatusResponse response;
    EXPECT_TRUE(
        clients_->intake->GetReferralStatus(&context, request, &response).ok());
    return response;
  }

  v1::ClaimReferralsResponse Claim(const std::string& queue, int max) {
    grpc::ClientContext context;
    v1::ClaimReferralsRequest request;
    request.set_queue(queue);
    request.set_max(max);
    request.set_worker("sw.triage");
    v1::ClaimReferralsResponse response;
    EXPECT_TRUE(
        clients_->triage->ClaimReferrals(&context, request, &response).ok());
    return response;
  }

  v1::QueueStats Stats(const std::string& queue) {
    grpc::ClientContext context;
    v1::GetQueueStatsResponse response;
    EXPECT_TRUE(
        clients_->operations
            ->GetQueueStats(&context, v1::GetQueueStatsRequest(), &response)
            .ok());
    for (const auto& stats : response.queues()) {
      if (stats.queue() == queue) return stats;
    }
    ADD_FAILURE() << "no stats for " << queue;
    return {};
  }

  TempDir dir_;
  std::atomic<int64_t> now_us_{0};
  std::unique_ptr<server::Broker> broker_;
  std::unique_ptr<BrokerClients> clients_;
};

TEST_F(IntakeRoutingTest, AnInAreaReferralInWorkingHoursGoesToTriage) {
  v1::SubmitReferralResponse response = Submit(SampleReferral(), "in-hours");
  EXPECT_EQ(response.queue(), "ifd-triage");
  EXPECT_THAT(response.notified_queues(), IsEmpty());
  EXPECT_EQ(response.priority_band(), v1::PRIORITY_BAND_STANDARD);
  // One working day: Tuesday 10:00 -> Wednesday 10:00.
  EXPECT_EQ(FromProto(response.due_at()), London(2026, 11, 25, 10));
  v1::GetReferralStatusResponse status = Status(response.referral_id());
  EXPECT_EQ(status.history(1).stage(), v1::STAGE_ROUTED);
  EXPECT_EQ(status.history(1).queue(), "ifd-triage");
  EXPECT_EQ(status.history(1).detail(), "default");
}

TEST_F(IntakeRoutingTest, ImmediateRiskGoesToTheUrgentQueueOnAFourHourClock) {
  v1::SubmitReferralResponse response =
      Submit(SampleReferral({.immediate_risk = true}), "urgent");
  EXPECT_EQ(response.queue(), "ifd-urgent");
  EXPECT_EQ(response.priority_band(), v1::PRIORITY_BAND_IMMEDIATE_RISK);
  EXPECT_EQ(FromProto(response.due_at()), London(2026, 11, 24, 14));
  EXPECT_EQ(Status(response.referral_id()).history(1).detail(),
            "immediate-risk");
}

TEST_F(IntakeRoutingTest, ChildrenLivingElsewhereGoToTheOutOfAreaQueue) {
  v1::SubmitReferralResponse response =
      Submit(SampleReferral({.postcode = "CB2 1TN"}), "elsewhere");
  EXPECT_EQ(response.queue(), "out-of-area");
  EXPECT_EQ(Status(response.referral_id()).history(1).detail(), "out-of-area");
}

TEST_F(IntakeRoutingTest, OutOfHoursTheEmergencyDutyTeamIsToldToo) {
  // Saturday 28 November 2026, 10:00.
  SetNow(London(2026, 11, 28, 10));
  v1::SubmitReferralResponse response = Submit(SampleReferral(), "weekend");
  EXPECT_EQ(response.queue(), "ifd-triage");
  EXPECT_THAT(response.notified_queues(), ElementsAre("edt-out-of-hours"));
  // The clock starts Monday 09:00: due at the end of Monday.
  EXPECT_EQ(FromProto(response.due_at()), London(2026, 11, 30, 17));
}

TEST_F(IntakeRoutingTest, BankHolidaysDoNotCountAsWorkingTime) {
  // Christmas Eve 2026 (Thursday) 15:00: two working hours that day, then
  // Christmas Day, the weekend and the Boxing Day substitute (28 December)
  // pass, and the remaining six hours run on Tuesday 29 December.
  SetNow(London(2026, 12, 24, 15));
  v1::SubmitReferralResponse response = Submit(SampleReferral(), "xmas");
  EXPECT_EQ(FromProto(response.due_at()), London(2026, 12, 29, 15));
}

TEST_F(IntakeRoutingTest, DueTimesRespectTheClockChange) {
  // Friday 23 October 2026 12:00 BST; clocks go back on Sunday 25 October.
  // One working day later is Monday 26 October 12:00 GMT, 73 hours on.
  SetNow(London(2026, 10, 23, 12));
  v1::SubmitReferralResponse response = Submit(SampleReferral(), "dst");
  EXPECT_EQ(FromProto(response.due_at()), London(2026, 10, 26, 12));
  EXPECT_EQ(FromProto(response.due_at()) - London(2026, 10, 23, 12),
            absl::Hours(73));
}

TEST_F(IntakeRoutingTest, PastItsDueTimeAReferralShowsAsOverdue) {
  v1::SubmitReferralResponse response = Submit(SampleReferral(), "late");
  EXPECT_FALSE(Status(response.referral_id()).overdue());
  EXPECT_EQ(Stats("ifd-triage").overdue_count(), 0);
  EXPECT_EQ(Stats("ifd-triage").due_within_hour_count(), 0);

  SetNow(London(2026, 11, 25, 9, 30));
  EXPECT_EQ(Stats("ifd-triage").due_within_hour_count(), 1);

  SetNow(London(2026, 11, 25, 10, 1));
  EXPECT_TRUE(Status(response.referral_id()).overdue());
  EXPECT_EQ(Stats("ifd-triage").overdue_count(), 1);

  // Time in each stage is measured up to now while the stage is open.
  v1::GetReferralStatusResponse status = Status(response.referral_id());
  ASSERT_GE(status.stage_durations_size(), 2);
  EXPECT_EQ(status.stage_durations(1).stage(), "awaiting_claim");
  EXPECT_TRUE(status.stage_durations(1).open());
  EXPECT_GE(status.stage_durations(1).duration().seconds(), 24 * 3600);
}

TEST_F(IntakeRoutingTest, AnEarlierDueTimeIsDeliveredFirst) {
  // Received Saturday (due Monday 17:00) and Monday 08:00 (also due Monday
  // 17:00) and Monday 11:00 (due Tuesday 11:00): delivered in due order.
  SetNow(London(2026, 11, 28, 10));
  const std::string saturday =
      Submit(SampleReferral({.nhs_number = "9990000018"}), "sat").referral_id();
  SetNow(London(2026, 11, 30, 11));
  const std::string late_monday =
      Submit(SampleReferral({.nhs_number = "9990000026"}), "mon-11")
          .referral_id();
  SetNow(London(2026, 11, 30, 8));  // a clock that went back: order by due
  const std::string early_monday =
      Submit(SampleReferral({.nhs_number = "9990000034"}), "mon-08")
          .referral_id();
  v1::ClaimReferralsResponse claims = Claim("ifd-triage", 3);
  ASSERT_EQ(claims.claims_size(), 3);
  EXPECT_EQ(claims.claims(0).referral_id(), saturday);
  EXPECT_EQ(claims.claims(1).referral_id(), early_monday);
  EXPECT_EQ(claims.claims(2).referral_id(), late_monday);
}

TEST_F(IntakeRoutingTest, RepeatedConcernsAreLinkedAndRaisedABand) {
  // Three earlier referrals about the same child (same NHS number) from
  // different days; each is decided.
  std::vector<std::string> earlier;
  for (int day = 0; day < 3; ++day) {
    SetNow(London(2026, 11, 24 + day, 10));
    earlier.push_back(
        Submit(SampleReferral(), absl::StrCat("earlier-", day)).referral_id());
  }
  const v1::ClaimReferralsResponse to_decide = Claim("ifd-triage", 3);
  ASSERT_EQ(to_decide.claims_size(), 3);
  for (const auto& claim : to_decide.claims()) {
    grpc::ClientContext context;
    v1::RecordDecisionRequest request;
    request.set_referral_id(claim.referral_id());
    request.set_lease_token(claim.lease_token());
    request.set_decision(v1::DECISION_INFORMATION_AND_ADVICE);
    request.set_rationale("Advice given to the family.");
    v1::RecordDecisionResponse response;
    ASSERT_TRUE(
        clients_->triage->RecordDecision(&context, request, &response).ok());
  }

  // A fourth referral, spelt differently but with the same NHS number, and
  // an unrelated referral that arrived first.
  SetNow(London(2026, 11, 27, 9, 30));
  const std::string unrelated =
      Submit(SampleReferral({.nhs_number = "9990000042"}), "unrelated")
          .referral_id();
  SetNow(London(2026, 11, 27, 10));
  v1::SubmitReferralResponse fourth =
      Submit(SampleReferral({.given_name = "TESTCHILD"}), "fourth");
  EXPECT_TRUE(fourth.repeated_concern());
  EXPECT_EQ(fourth.priority_band(), v1::PRIORITY_BAND_RAISED);
  v1::GetReferralStatusResponse status = Status(fourth.referral_id());
  EXPECT_THAT(Stages(status), ::testing::Contains(v1::STAGE_PRIORITY_RAISED));

  // Raised above the unrelated referral that is due sooner.
  v1::ClaimReferralsResponse claims = Claim("ifd-triage", 2);
  ASSERT_EQ(claims.claims_size(), 2);
  EXPECT_EQ(claims.claims(0).referral_id(), fourth.referral_id());
  EXPECT_EQ(claims.claims(1).referral_id(), unrelated);
  EXPECT_TRUE(claims.claims(0).entry().repeated_concern());

  // Triage sees the child's earlier referrals with dates, sources and
  // outcomes.
  const v1::ClaimedReferral& claimed = claims.claims(0);
  ASSERT_EQ(claimed.history_size(), 3);
  std::vector<std::string> linked;
  for (const auto& link : claimed.history()) {
    linked.push_back(link.referral_id());
    EXPECT_EQ(link.matched_by(), "nhs_number");
    EXPECT_EQ(link.agency_type(), v1::AGENCY_TYPE_POLICE);
    EXPECT_EQ(link.decision(), v1::DECISION_INFORMATION_AND_ADVICE);
    EXPECT_GT(link.received_at().seconds(), 0);
  }
  EXPECT_THAT(linked, ::testing::UnorderedElementsAreArray(earlier));
  ASSERT_EQ(claimed.earlier_referral_counts_size(), 1);
  EXPECT_EQ(claimed.earlier_referral_counts(0).count(), 3);
  EXPECT_FALSE(claimed.earlier_referral_counts(0).count_capped());
  EXPECT_THAT(claims.claims(1).history(), IsEmpty());
  EXPECT_THAT(claims.claims(1).earlier_referral_counts(), IsEmpty());
}

TEST_F(IntakeRoutingTest, SiblingsWithoutNhsNumbersLinkByNameAndBirthDate) {
  v1::Referral referral = SampleReferral({.nhs_number = ""});
  v1::Child* sibling = referral.add_children();
  *sibling = referral.children(0);
  sibling->set_given_name("Siblingname");
  Submit(referral, "siblings-1");
  SetNow(London(2026, 11, 25, 10));
  v1::Referral later = SampleReferral({.nhs_number = ""});
  later.mutable_children(0)->set_given_name("Siblingname");
  later.mutable_children(0)->set_family_name("FICTITIOUS");
  Submit(later, "siblings-2");

  v1::ClaimReferralsResponse claims = Claim("ifd-triage", 2);
  ASSERT_EQ(claims.claims_size(), 2);
  ASSERT_EQ(claims.claims(1).history_size(), 1);
  EXPECT_EQ(claims.claims(1).history(0).matched_by(), "name_and_date_of_birth");
  EXPECT_EQ(claims.claims(1).history(0).referral_id(),
            claims.claims(0).referral_id());
}

TEST_F(IntakeRoutingTest, ReloadedRoutingAppliesAndBadFilesAreRefused) {
  const std::string routing = dir_.Sub("routing.txtpb");
  std::string shipped;
  {
    std::ifstream in(
        absl::StrCat(REFERRAL_SOURCE_DIR, "/server/config/routing.txtpb"));
    shipped.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_FALSE(shipped.empty());
  auto write = [&](const std::string& text) {
    std::ofstream out(routing, std::ios::trunc);
    out << text;
  };
  write(shipped);
  clients_.reset();
  broker_.reset();
  StartBroker(routing);
  EXPECT_EQ(Submit(SampleReferral(), "before").queue(), "ifd-triage");

  // Schools' referrals get a queue of their own.
  write(shipped + R"(
queues { name: "schools" due { working_days: 1 } }
rules { name: "schools" match { agency_types: AGENCY_TYPE_POLICE } queue: "schools" }
)");
  ASSERT_TRUE(broker_->ReloadRules().ok());
  EXPECT_EQ(Submit(SampleReferral(), "after").queue(), "schools");

  write(shipped + "\nrules { name: \"broken\" queue: \"nowhere\" }\n");
  absl::Status refused = broker_->ReloadRules();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("routing.txtpb:"));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("nowhere"));
  // The previous rules stay in force.
  EXPECT_EQ(Submit(SampleReferral(), "still").queue(), "schools");
}

}  // namespace
}  // namespace referral
