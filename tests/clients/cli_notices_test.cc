// referral_cli notices and the stats tables for timeliness and referrer
// feedback: what the command sends and prints, against an in-process fake
// Triage service, and how the new figures are laid out.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker_channel.h"
#include "cli_commands.h"
#include "cli_runner.h"
#include "referral/v1/broker.grpc.pb.h"
#include "stats_table.h"

namespace referral::clients {
namespace {

namespace v1 = ::referral::v1;

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Serves ListNotices only: two notices on the first page, one on the next.
class FakeNotices final : public v1::Triage::Service {
 public:
  FakeNotices() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~FakeNotices() override {
    server_->Shutdown(absl::ToChronoTime(absl::Now()));
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  v1::ListNoticesRequest last_request() {
    absl::MutexLock lock(&mu_);
    return last_;
  }

  grpc::Status ListNotices(grpc::ServerContext*,
                           const v1::ListNoticesRequest* request,
                           v1::ListNoticesResponse* response) override {
    {
      absl::MutexLock lock(&mu_);
      last_ = *request;
    }
    if (request->queue() != "edt-out-of-hours") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "queue: no such queue");
    }
    if (request->page().page_token().empty()) {
      *response->add_notices() =
          Notice("REF-2026-000003", v1::REFERRAL_STATE_QUEUED);
      *response->add_notices() =
          Notice("REF-2026-000002", v1::REFERRAL_STATE_DECIDED);
      response->set_next_page_token("more");
    } else {
      *response->add_notices() =
          Notice("REF-2026-000001", v1::REFERRAL_STATE_CLAIMED);
    }
    return grpc::Status::OK;
  }

 private:
  static v1::Notice Notice(const std::string& id, v1::ReferralState state) {
    v1::Notice notice;
    notice.set_state(state);
    notice.set_queue("ifd-triage");
    v1::QueueEntry* entry = notice.mutable_entry();
    entry->set_referral_id(id);
    entry->set_priority_band(v1::PRIORITY_BAND_STANDARD);
    entry->mutable_received_at()->set_seconds(1795860000);  // 2026-11-28 10:00Z
    entry->set_agency_type(v1::AGENCY_TYPE_POLICE);
    entry->add_concerns(v1::CONCERN_CATEGORY_DOMESTIC_ABUSE);
    v1::ChildSummary* child = entry->add_children();
    child->set_initials("TF");
    child->set_age_years(8);
    return notice;
  }

  absl::Mutex mu_;
  v1::ListNoticesRequest last_ ABSL_GUARDED_BY(mu_);
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

class CliNoticesTest : public ::testing::Test {
 protected:
  void SetUp() override { channel_ = ChannelTo(fake_.address()); }

  CliResult Run(std::vector<std::string> args, CliOptions options = {},
                std::vector<std::string> given = {}) {
    return RunCli(channel_, "notices", args, options, given);
  }

  FakeNotices fake_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(CliNoticesTest, PrintsEachNoticeWithStateAndWorkQueue) {
  CliResult r = Run({"edt-out-of-hours"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "notice REF-2026-000003 state=queued queue=ifd-triage "
            "priority=standard received=2026-11-28T10:00:00Z due=- "
            "agency=police concerns=domestic-abuse immediate_risk=false "
            "repeated_concern=false attempts=0 children=TF:8 "
            "child_voice_missing=false\n"
            "notice REF-2026-000002 state=decided queue=ifd-triage "
            "priority=standard received=2026-11-28T10:00:00Z due=- "
            "agency=police concerns=domestic-abuse immediate_risk=false "
            "repeated_concern=false attempts=0 children=TF:8 "
            "child_voice_missing=false\n"
            "page notices=2 next_page_token=more\n");
  EXPECT_EQ(fake_.last_request().queue(), "edt-out-of-hours");
}

TEST_F(CliNoticesTest, PagesAndJson) {
  CliOptions page;
  page.page_size = 2;
  page.page_token = "more";
  CliResult r = Run({"edt-out-of-hours"}, page, {"page_size", "page_token"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("notice REF-2026-000001 state=claimed "));
  EXPECT_THAT(r.out, HasSubstr("page notices=1 next_page_token=-\n"));
  EXPECT_EQ(fake_.last_request().page().page_size(), 2);
  EXPECT_EQ(fake_.last_request().page().page_token(), "more");

  CliOptions json;
  json.json = true;
  r = Run({"edt-out-of-hours"}, json, {"json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("{\"notices\":[{\"entry\":{"));
}

TEST_F(CliNoticesTest, ErrorsAndUsage) {
  CliResult r = Run({"nowhere"});
  EXPECT_EQ(r.code, kExitRpcError);
  EXPECT_THAT(r.err, HasSubstr("referral_cli notices: NOT_FOUND"));
  r = Run({});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("usage: referral_cli notices QUEUE"));
  EXPECT_THAT(UsageText("referral_cli"), HasSubstr("  notices QUEUE "));
}

// --- The stats tables. -------------------------------------------------------

v1::QueueStats Queue(const std::string& name, int64_t decided,
                     int64_t p50_seconds, int64_t p90_seconds,
                     int64_t p99_seconds, int64_t notices) {
  v1::QueueStats q;
  q.set_queue(name);
  q.mutable_decision_window()->set_seconds(28 * 86400);
  q.set_decisions_in_window(decided);
  if (decided > 0) {
    q.mutable_time_to_decision_p50()->set_seconds(p50_seconds);
    q.mutable_time_to_decision_p90()->set_seconds(p90_seconds);
    q.mutable_time_to_decision_p99()->set_seconds(p99_seconds);
  }
  q.set_notices_last_24h(notices);
  return q;
}

TEST(StatsTimelinessTableTest, AddsTimelinessAndFeedbackTables) {
  v1::GetQueueStatsResponse stats;
  *stats.add_queues() = Queue("edt-out-of-hours", 0, 0, 0, 0, 3);
  *stats.add_queues() = Queue("ifd-triage", 14, 9000, 93600, 187200, 0);
  v1::AgencyFeedback* police = stats.add_feedback();
  police->set_agency("cambs-police");
  police->set_unacknowledged_count(3);
  police->set_overdue_count(1);
  police->mutable_oldest_unacknowledged_age()->set_seconds(93600);
  stats.mutable_outcome_ack_overdue_after()->set_seconds(86400);
  EXPECT_EQ(
      FormatStatsTable(stats),
      "QUEUE             READY  CLAIMED  DEAD  OLDEST_READY  OVERDUE  DUE_1H\n"
      "edt-out-of-hours      0        0     0             -        0       0\n"
      "ifd-triage            0        0     0             -        0       0\n"
      "TOTAL                 0        0     0             -        0       0\n"
      "\n"
      "QUEUE             DECIDED_28d  TTD_P50  TTD_P90  TTD_P99  NOTICES_24H\n"
      "edt-out-of-hours            0        -        -        -            3\n"
      "ifd-triage                 14    2h30m    1d02h    2d04h            0\n"
      "\n"
      "AGENCY        UNACKED  OVERDUE_24h  OLDEST_UNACKED\n"
      "cambs-police        3            1           1d02h\n");
}

TEST(StatsTimelinessTableTest, WindowsReadAsDaysOrHours) {
  EXPECT_EQ(FormatWindow(absl::Hours(24 * 28)), "28d");
  EXPECT_EQ(FormatWindow(absl::Hours(48)), "2d");
  EXPECT_EQ(FormatWindow(absl::Hours(24)), "24h");
  EXPECT_EQ(FormatWindow(absl::Hours(36)), "36h");
  EXPECT_EQ(FormatWindow(absl::Minutes(90)), "1h30m");
  EXPECT_EQ(FormatWindow(absl::ZeroDuration()), "0s");
}

TEST(StatsTimelinessTableTest, FeedbackAloneStillShows) {
  v1::GetQueueStatsResponse stats;
  v1::AgencyFeedback* school = stats.add_feedback();
  school->set_agency("school-one");
  school->set_unacknowledged_count(1);
  stats.mutable_outcome_ack_overdue_after()->set_seconds(7200);
  EXPECT_EQ(FormatStatsTable(stats),
            "AGENCY      UNACKED  OVERDUE_2h  OLDEST_UNACKED\n"
            "school-one        1           0              0s\n");
}

}  // namespace
}  // namespace referral::clients
