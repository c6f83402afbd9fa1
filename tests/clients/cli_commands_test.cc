// Every referral_cli command against an in-process fake broker: what it
// sends, what it prints, and its exit code.
#include "cli_commands.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "broker_channel.h"
#include "cli_format.h"
#include "cli_runner.h"
#include "fake_broker.h"
#include "fictitious_referral.h"
#include "grpc/health/v1/health.pb.h"
#include "support/broker_process.h"

namespace referral::clients {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

using Result = CliResult;

class CliCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    channel_ = ChannelTo(broker_.address());
    referral_path_ = tmp_.Sub("referral.json");
    std::ofstream(referral_path_)
        << ToJson(MakeFictitiousReferral(1, "cambs-police"));
  }

  Result Run(const std::string& command, std::vector<std::string> args,
             CliOptions options = {}, std::vector<std::string> given = {},
             CallCanceller* canceller = nullptr,
             std::ostream* watched_out = nullptr) {
    return RunCli(channel_, command, args, options, given, out_is_terminal_,
                  canceller, watched_out);
  }

  // Submits the fictitious referral and returns its id.
  std::string Submit() {
    CliOptions o;
    o.idempotency_key = "key-" + std::to_string(next_key_++);
    const Result r = Run("submit", {referral_path_}, o, {"idempotency_key"});
    EXPECT_EQ(r.code, kExitOk) << r.err;
    std::smatch m;
    std::regex_search(r.out, m, std::regex("REF-2026-[0-9]{6}"));
    return m.str();
  }

  // Submits two referrals and has bob claim the first; its id, or "" when
  // the claim failed.
  std::string SubmitTwoAndClaimOne() {
    const std::string first = Submit();
    Submit();
    CliOptions claim;
    claim.worker = "bob";
    const Result r = Run("claim", {"ifd-triage"}, claim, {"worker"});
    return r.code == kExitOk ? first : "";
  }

  referral::testing::FakeBroker broker_;
  referral::testing::TempDir tmp_;
  std::shared_ptr<grpc::Channel> channel_;
  std::string referral_path_;
  int next_key_ = 1;
  bool out_is_terminal_ = false;
};

// Occurrences of `what` in `text`, not overlapping.
int Count(const std::string& text, const std::string& what) {
  const std::vector<absl::string_view> pieces = absl::StrSplit(text, what);
  return static_cast<int>(pieces.size()) - 1;
}

google::protobuf::Duration Seconds(int64_t seconds) {
  google::protobuf::Duration d;
  d.set_seconds(seconds);
  return d;
}

constexpr int64_t kJan5 = 1767605400;  // 2026-01-05T09:30:00Z

// Feedback rows and the time of the figures, as the real broker sends.
v1::GetQueueStatsResponse StatsExtras() {
  v1::GetQueueStatsResponse extras;
  extras.mutable_at()->set_seconds(kJan5);
  *extras.mutable_outcome_ack_overdue_after() = Seconds(24 * 3600);
  v1::AgencyFeedback* police = extras.add_feedback();
  police->set_agency("cambs-police");
  police->set_unacknowledged_count(3);
  police->set_overdue_count(1);
  *police->mutable_oldest_unacknowledged_age() = Seconds(26 * 3600 + 5 * 60);
  v1::AgencyFeedback* school = extras.add_feedback();
  school->set_agency("st-marys-primary");
  school->set_unacknowledged_count(12);
  *school->mutable_oldest_unacknowledged_age() = Seconds(3 * 3600 + 12 * 60);
  return extras;
}

constexpr char kStatsTable[] =
    "QUEUE       READY  CLAIMED  DEAD  OLDEST_READY  OVERDUE  DUE_1H\n"
    "ifd-triage      1        1     0            0s        0       0\n"
    "\n"
    "AGENCY            UNACKED  OVERDUE_24h  OLDEST_UNACKED\n"
    "cambs-police            3            1           1d02h\n"
    "st-marys-primary       12            0           3h12m\n";

TEST_F(CliCommandsTest, SubmitPrintsOneLineAndSendsTheKey) {
  CliOptions o;
  o.idempotency_key = "abc-1";
  Result r = Run("submit", {referral_path_}, o, {"idempotency_key"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("submitted REF-2026-000001 "
                                  "queue=ifd-triage duplicate=false "
                                  "priority=standard due=[-0-9T:Z]+ "
                                  "received=[-0-9T:Z]+ "
                                  "repeated_concern=false notified=- "
                                  "idempotency_key=abc-1\n"));
  EXPECT_THAT(r.err, IsEmpty());
  ASSERT_EQ(broker_.submits().size(), 1u);
  EXPECT_EQ(broker_.submits()[0].idempotency_key(), "abc-1");
  EXPECT_EQ(broker_.submits()[0].referral().referrer().agency_id(),
            "cambs-police");

  // Same key again: the broker says duplicate.
  r = Run("submit", {referral_path_}, o, {"idempotency_key"});
  EXPECT_THAT(r.out, HasSubstr("submitted REF-2026-000001 "));
  EXPECT_THAT(r.out, HasSubstr("duplicate=true"));
}

TEST_F(CliCommandsTest, SubmitWithoutKeyGeneratesAndReportsOne) {
  CliOptions o;
  o.agency = "override-agency";
  o.json = true;
  const Result r = Run("submit", {referral_path_}, o, {"agency", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::string key = broker_.submits().at(0).idempotency_key();
  EXPECT_THAT(key, MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
                                "[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  EXPECT_THAT(r.err, HasSubstr("no --idempotency_key given; using " + key));
  EXPECT_EQ(broker_.submits()[0].referral().referrer().agency_id(),
            "override-agency");
  // --json: the response alone on stdout.
  EXPECT_THAT(r.out, StartsWith("{\"referral_id\":\"REF-2026-000001\""));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
}

TEST_F(CliCommandsTest, SubmitRejectedByTheBrokerExitsOne) {
  const std::string path = tmp_.Sub("no-children.json");
  std::ofstream(path) << R"({"description": "x"})";
  CliOptions o;
  o.idempotency_key = "k";
  const Result r = Run("submit", {path}, o, {"idempotency_key"});
  EXPECT_EQ(r.code, kExitRpcError);
  EXPECT_THAT(r.err, HasSubstr("referral_cli submit: INVALID_ARGUMENT: "
                               "referral.children: at least one child"));
  EXPECT_THAT(r.err, HasSubstr("--idempotency_key=k"));
  EXPECT_THAT(r.out, IsEmpty());
}

TEST_F(CliCommandsTest, SubmitOfABadFileIsAUsageErrorWithoutContent) {
  const std::string path = tmp_.Sub("bad.json");
  std::ofstream(path) << "{\n  \"children\": [{\"sex\": \"Secretly\"}]\n}";
  Result r = Run("submit", {path}, {}, {});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, AllOf(HasSubstr("referral_cli submit: " + path +
                                     ": line 2, column 24: children[0].sex: "
                                     "unknown Sex name"),
                           Not(HasSubstr("Secretly"))));
  EXPECT_TRUE(broker_.submits().empty());

  r = Run("submit", {tmp_.Sub("missing.json")}, {}, {});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("cannot open"));
}

TEST_F(CliCommandsTest, StatusOfAnUnknownReferralIsNotFound) {
  const Result r = Run("status", {"REF-2026-999999"});
  EXPECT_EQ(r.code, kExitRpcError);
  EXPECT_EQ(r.err,
            "referral_cli status: NOT_FOUND: no referral REF-2026-999999\n");
}

TEST_F(CliCommandsTest, TriageRoundTrip) {
  const std::string id = Submit();
  Result r = Run("status", {id});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("referral " + id + " state=queued "));
  EXPECT_THAT(r.out, HasSubstr("\nhistory " + id + " stage=received "));
  EXPECT_THAT(r.out, HasSubstr("\nduration " + id +
                               " stage=awaiting_claim time=5s open=true\n"));

  r = Run("list", {"ifd-triage"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("entry " + id + " priority=standard "));
  EXPECT_THAT(r.out, HasSubstr("agency=police concerns=domestic-abuse,"
                               "emotional-abuse "));
  EXPECT_THAT(r.out, HasSubstr("\npage entries=1 next_page_token=- ready=1\n"));

  CliOptions claim;
  claim.max = 5;
  claim.worker = "alice";
  r = Run("claim", {"ifd-triage"}, claim, {"max", "worker"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::string token = "tok-" + id + "-1";
  EXPECT_THAT(r.out, MatchesRegex("claimed " + id + " token=" + token +
                                  " attempt=1 lease_expires=[-0-9T:Z]+ "
                                  "priority=unspecified due=- linked=0\n"));
  EXPECT_EQ(broker_.claims().back().worker(), "alice");
  EXPECT_EQ(broker_.claims().back().max(), 5);

  // Nothing left: not an error, said on stderr.
  r = Run("claim", {"ifd-triage"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("nothing ready in queue ifd-triage"));

  CliOptions extend;
  extend.token = token;
  extend.lease_seconds = 600;
  r = Run("extend", {id}, extend, {"token", "lease_seconds"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("extended " + id + " lease_expires="));

  CliOptions stale;
  stale.token = "wrong";
  stale.decision = "early-help";
  stale.rationale = "r";
  r = Run("decide", {id}, stale, {"token", "decision", "rationale"});
  EXPECT_EQ(r.code, kExitRpcError);
  EXPECT_THAT(r.err, HasSubstr("referral_cli decide: FAILED_PRECONDITION: "));

  CliOptions decide;
  decide.token = token;
  decide.decision = "early-help";
  decide.rationale = "Needs early help";
  decide.feedback = "Passed to early help.";
  r = Run("decide", {id}, decide,
          {"token", "decision", "rationale", "feedback"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("decided " + id +
                                  " decision=early-help state=decided "
                                  "at=[-0-9T:Z]+\n"));
  EXPECT_EQ(broker_.decisions().back().decision(), v1::DECISION_EARLY_HELP);
  EXPECT_EQ(broker_.decisions().back().feedback(), "Passed to early help.");

  CliOptions outcomes;
  outcomes.agency = "cambs-police";
  r = Run("outcomes", {}, outcomes, {"agency"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, StartsWith("outcome " + id + " decision=early-help "));
  EXPECT_THAT(r.out, HasSubstr("reference=LOADGEN-1 "
                               "feedback=\"Passed to early help.\"\n"));
  EXPECT_THAT(r.out, HasSubstr("page outcomes=1 next_page_token=-\n"));

  r = Run("ack", {id});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out,
              MatchesRegex("acknowledged " + id +
                           " at=[-0-9T:Z]+ already_acknowledged=false\n"));
  r = Run("ack", {id});
  EXPECT_THAT(r.out, HasSubstr("already_acknowledged=true"));
}

TEST_F(CliCommandsTest, ReleaseAndStats) {
  const std::string id = SubmitTwoAndClaimOne();
  ASSERT_FALSE(id.empty());

  Result r = Run("stats", {});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(
      r.out,
      "QUEUE       READY  CLAIMED  DEAD  OLDEST_READY  OVERDUE  DUE_1H\n"
      "ifd-triage      1        1     0            0s        0       0\n");

  CliOptions release;
  release.token = "tok-" + id + "-1";
  release.reason = "needs a police check first";
  r = Run("release", {id}, release, {"token", "reason"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "released " + id + " state=queued\n");
  EXPECT_EQ(broker_.releases().back().reason(), "needs a police check first");

  CliOptions json;
  json.json = true;
  r = Run("stats", {}, json, {"json"});
  EXPECT_THAT(r.out, HasSubstr("\"ready_count\":\"2\""));
}

TEST_F(CliCommandsTest, OpsDeadLettersAndRequeue) {
  Result r = Run("dead-letters", {"ifd-triage"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "dead-letter REF-2026-000099 queue=ifd-triage attempts=5 "
            "dead_lettered=- received=-\n"
            "page dead_letters=1 next_page_token=more\n");
  r = Run("requeue", {"REF-2026-000099"});
  EXPECT_EQ(r.out, "requeued REF-2026-000099 queue=ifd-triage state=queued\n");
  r = Run("requeue", {"REF-2026-000001"});
  EXPECT_EQ(r.code, kExitRpcError);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

TEST_F(CliCommandsTest, WatchPrintsEventsUntilTheStreamEnds) {
  Result r = Run("watch", {"ifd-triage"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "2026-01-01T00:00:00Z arrived REF-2026-000001 queue=ifd-triage "
            "priority=unspecified due=- worker=-\n"
            "2026-01-01T00:00:00Z claimed REF-2026-000001 queue=ifd-triage "
            "priority=unspecified due=- worker=alice\n");
  CliOptions json;
  json.json = true;
  r = Run("watch", {"ifd-triage"}, json, {"json"});
  EXPECT_THAT(r.out, StartsWith("{\"kind\":\"KIND_ARRIVED\""));
}

// Output a test can wait on: text written by another thread.
class AwaitableOutput : public std::streambuf {
 public:
  bool AwaitText(const std::string& text, absl::Duration timeout) {
    absl::MutexLock lock(&mutex_);
    Wanted wanted{&text_, &text};
    return mutex_.AwaitWithTimeout(absl::Condition(&wanted, &Wanted::Seen),
                                   timeout);
  }
  std::string text() {
    absl::MutexLock lock(&mutex_);
    return text_;
  }

 protected:
  int overflow(int c) override {
    absl::MutexLock lock(&mutex_);
    if (c != traits_type::eof()) text_.push_back(static_cast<char>(c));
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    absl::MutexLock lock(&mutex_);
    text_.append(s, static_cast<size_t>(n));
    return n;
  }

 private:
  struct Wanted {
    const std::string* text;
    const std::string* wanted;
    bool Seen() const { return text->find(*wanted) != std::string::npos; }
  };
  absl::Mutex mutex_;
  std::string text_ ABSL_GUARDED_BY(mutex_);
};

TEST_F(CliCommandsTest, WatchEndsCleanlyWhenInterrupted) {
  CallCanceller canceller;
  AwaitableOutput output;
  std::ostream out(&output);
  std::thread interrupter([&] {
    // Ctrl-C once the events have been printed.
    EXPECT_TRUE(
        output.AwaitText(" claimed REF-2026-000001 ", absl::Seconds(30)));
    canceller.Cancel();
  });
  const Result r = Run("watch", {"endless"}, {}, {}, &canceller, &out);
  interrupter.join();
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(output.text(), HasSubstr(" claimed REF-2026-000001 "));
  EXPECT_EQ(r.err, "watching endless\n");
}

// --- stats -------------------------------------------------------------------

TEST_F(CliCommandsTest, StatsShowsEveryQueueAndTheReferrerFeedback) {
  ASSERT_FALSE(SubmitTwoAndClaimOne().empty());
  broker_.SetStatsExtras(StatsExtras());

  const Result r = Run("stats", {});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, kStatsTable);
  EXPECT_THAT(r.err, IsEmpty());
}

TEST_F(CliCommandsTest, StatsJsonIsTheResponseAndParsesBack) {
  Submit();
  broker_.SetStatsExtras(StatsExtras());
  CliOptions json;
  json.json = true;
  const Result r = Run("stats", {}, json, {"json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Count(r.out, "\n"), 1);
  v1::GetQueueStatsResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &parsed).ok())
      << r.out;
  ASSERT_EQ(parsed.queues_size(), 1);
  EXPECT_EQ(parsed.queues(0).queue(), "ifd-triage");
  EXPECT_EQ(parsed.queues(0).ready_count(), 1);
  EXPECT_EQ(parsed.at().seconds(), kJan5);
  ASSERT_EQ(parsed.feedback_size(), 2);
  EXPECT_EQ(parsed.feedback(1).unacknowledged_count(), 12);
  // Proto field names, as every other command's --json.
  EXPECT_THAT(r.out, HasSubstr("\"oldest_unacknowledged_age\":\"11520s\""));
}

CliOptions Watch(int count) {
  CliOptions o;
  o.watch = true;
  o.watch_count = count;
  o.watch_interval = absl::Milliseconds(1);
  return o;
}

TEST_F(CliCommandsTest,
       StatsWatchIntoAPipeSeparatesRefreshesWithoutControlCodes) {
  ASSERT_FALSE(SubmitTwoAndClaimOne().empty());
  broker_.SetStatsExtras(StatsExtras());

  const Result r = Run("stats", {}, Watch(3), {"watch", "watch_count"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::string heading = "--- stats at 2026-01-05T09:30:00Z ---\n";
  EXPECT_EQ(r.out, heading + kStatsTable + "\n" + heading + kStatsTable + "\n" +
                       heading + kStatsTable);
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
  EXPECT_EQ(broker_.stats_calls(), 3);
  EXPECT_THAT(r.err, IsEmpty());
}

TEST_F(CliCommandsTest, StatsWatchOnATerminalRedrawsTheScreen) {
  Submit();
  broker_.SetStatsExtras(StatsExtras());
  out_is_terminal_ = true;
  const Result r = Run("stats", {}, Watch(2), {"watch", "watch_count"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::string clear = "\x1b[H\x1b[2J";
  EXPECT_THAT(r.out, StartsWith(clear + "referral broker stats at "
                                        "2026-01-05T09:30:00Z (every 1ms; "
                                        "Ctrl-C to stop)\n\nQUEUE "));
  EXPECT_EQ(Count(r.out, clear), 2);
  EXPECT_EQ(Count(r.out, "\nifd-triage      1 "), 2);
  EXPECT_THAT(r.out, Not(HasSubstr("---")));
}

TEST_F(CliCommandsTest, StatsWatchJsonPrintsOneObjectPerLine) {
  Submit();
  out_is_terminal_ = true;  // JSON Lines even on a terminal: no redrawing
  CliOptions o = Watch(3);
  o.json = true;
  const Result r = Run("stats", {}, o, {"watch", "watch_count", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << r.out;
  for (const std::string& line : lines) {
    v1::GetQueueStatsResponse parsed;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &parsed).ok())
        << line;
    ASSERT_EQ(parsed.queues_size(), 1);
    EXPECT_EQ(parsed.queues(0).ready_count(), 1);
  }
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
}

TEST_F(CliCommandsTest, StatsWatchKeepsGoingAfterAFailedRefresh) {
  Submit();
  broker_.FailStatsCalls({2}, grpc::StatusCode::UNAVAILABLE);
  const Result r = Run("stats", {}, Watch(3), {"watch", "watch_count"});
  EXPECT_EQ(r.code, kExitOk) << "the last refresh succeeded";
  EXPECT_EQ(r.err, "referral_cli stats: UNAVAILABLE: injected failure\n");
  EXPECT_EQ(Count(r.out, "--- stats at "), 3);
  EXPECT_EQ(Count(r.out, "QUEUE "), 2);
  EXPECT_EQ(broker_.stats_calls(), 3);
}

TEST_F(CliCommandsTest, StatsWatchExitsOneWhenTheLastRefreshFailed) {
  broker_.FailStatsCalls({3}, grpc::StatusCode::PERMISSION_DENIED);
  CliOptions o = Watch(3);
  o.json = true;
  const Result r = Run("stats", {}, o, {"watch", "watch_count", "json"});
  EXPECT_EQ(r.code, kExitRpcError);
  EXPECT_EQ(r.err, "referral_cli stats: PERMISSION_DENIED: injected failure\n");
  // JSON Lines hold responses only.
  EXPECT_EQ(Count(r.out, "\n"), 2);
  EXPECT_EQ(Count(r.out, "{\"queues\":"), 2);
}

// Runs `stats --watch` on a thread of its own, as main() would with a
// signal thread holding the canceller.
struct BackgroundWatch {
  CallCanceller canceller;
  AwaitableOutput output;
  std::ostream out{&output};
  absl::Notification done;
  Result result;
  std::thread thread;

  // Ends the watch even when a test failed before interrupting it.
  ~BackgroundWatch() {
    canceller.Cancel();
    if (thread.joinable()) thread.join();
  }
};

TEST_F(CliCommandsTest, StatsWatchEndsAtOnceWhenInterruptedBetweenRefreshes) {
  Submit();
  BackgroundWatch watch;
  CliOptions o = Watch(0);  // until interrupted
  // Far longer than the deadline below: only the interruption can end the
  // wait in time.
  o.watch_interval = absl::Minutes(5);
  watch.thread = std::thread([&] {
    watch.result = Run("stats", {}, o, {"watch"}, &watch.canceller, &watch.out);
    watch.done.Notify();
  });
  ASSERT_TRUE(watch.output.AwaitText("\nifd-triage ", absl::Seconds(30)));
  // The signal thread must not _exit: the watch handles it.
  EXPECT_TRUE(watch.canceller.Cancel());
  ASSERT_TRUE(watch.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(watch.result.code, kExitOk) << watch.result.err;
  EXPECT_EQ(Count(watch.output.text(), "--- stats at "), 1);
  EXPECT_EQ(broker_.stats_calls(), 1);
  EXPECT_THAT(watch.result.err, IsEmpty());
}

TEST_F(CliCommandsTest, StatsWatchInterruptedDuringARefreshExitsZero) {
  Submit();
  broker_.HangStatsCall(2);
  BackgroundWatch watch;
  CliOptions o = Watch(0);
  o.timeout = absl::Minutes(5);  // only the interruption ends the call
  watch.thread = std::thread([&] {
    watch.result = Run("stats", {}, o, {"watch"}, &watch.canceller, &watch.out);
    watch.done.Notify();
  });
  ASSERT_TRUE(broker_.stats_call_hanging().WaitForNotificationWithTimeout(
      absl::Seconds(30)));
  EXPECT_TRUE(watch.canceller.Cancel());
  ASSERT_TRUE(watch.done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(watch.result.code, kExitOk) << watch.result.err;
  EXPECT_EQ(Count(watch.output.text(), "--- stats at "), 1);
  EXPECT_THAT(watch.result.err, IsEmpty());
}

TEST_F(CliCommandsTest, StatsWatchRejectsMeaninglessValues) {
  CliOptions o = Watch(1);
  o.watch_interval = absl::ZeroDuration();
  Result r = Run("stats", {}, o, {"watch"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--watch_seconds must be at least 1"));
  r = Run("stats", {}, Watch(-1), {"watch", "watch_count"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--watch_count must not be negative"));
  EXPECT_EQ(broker_.stats_calls(), 0);
}

TEST(CallCancellerTest, CancelIsHandledOnlyWhileACommandAttends) {
  CallCanceller canceller;
  canceller.Attend();
  canceller.Leave();
  EXPECT_FALSE(canceller.Cancel()) << "nothing attends: the caller exits";
  EXPECT_TRUE(canceller.requested());
  EXPECT_TRUE(canceller.WaitForCancel(absl::ZeroDuration()));

  CallCanceller attended;
  EXPECT_FALSE(attended.WaitForCancel(absl::ZeroDuration()));
  attended.Attend();
  EXPECT_TRUE(attended.Cancel());
  EXPECT_TRUE(attended.WaitForCancel(absl::InfiniteDuration()));
}

// --- backup
// --------------------------------------------------------------------

TEST_F(CliCommandsTest, BackupListShowsOneLinePerBackup) {
  broker_.AddBackup(1, absl::FromUnixSeconds(kJan5), 12'897'485, 14);
  broker_.AddBackup(2, absl::FromUnixSeconds(kJan5 + 86400), 900, 3);
  Result r = Run("backup", {"list"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "backup 1 created=2026-01-05T09:30:00Z size=12.3MiB files=14\n"
            "backup 2 created=2026-01-06T09:30:00Z size=900B files=3\n");
  EXPECT_THAT(r.err, IsEmpty());

  CliOptions json;
  json.json = true;
  r = Run("backup", {"list"}, json, {"json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  v1::ListBackupsResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &parsed).ok())
      << r.out;
  ASSERT_EQ(parsed.backups_size(), 2);
  EXPECT_EQ(parsed.backups(0).size_bytes(), 12'897'485);
  EXPECT_EQ(parsed.backups(1).created_at().seconds(), kJan5 + 86400);
}

TEST_F(CliCommandsTest, BackupListWithNoBackupsSaysSoOnStderr) {
  const Result r = Run("backup", {"list"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(r.err, "referral_cli backup list: no backups yet\n");
}

TEST_F(CliCommandsTest, BackupCreateThenVerify) {
  broker_.AddBackup(1, absl::FromUnixSeconds(kJan5), 2048, 4);
  Result r = Run("backup", {"create"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("backup 2 created=[-0-9T:Z]+ "
                                  "size=4\\.0KiB files=5\n"));

  CliOptions verify;
  verify.backup_id = 1;
  r = Run("backup", {"verify"}, verify, {"backup_id"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "backup 1 verified: created=2026-01-05T09:30:00Z size=2.0KiB "
            "files=4\n");

  verify.json = true;
  r = Run("backup", {"verify"}, verify, {"backup_id", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  v1::VerifyBackupResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &parsed).ok())
      << r.out;
  EXPECT_EQ(parsed.backup().backup_id(), 1u);
}

TEST_F(CliCommandsTest, BackupVerifyOfADamagedBackupExitsOneNamingTheFile) {
  broker_.AddBackup(3, absl::FromUnixSeconds(kJan5), 2048, 4);
  broker_.DamageBackup(3, "shared_checksum/000012.sst");
  CliOptions verify;
  verify.backup_id = 3;
  Result r = Run("backup", {"verify"}, verify, {"backup_id"});
  EXPECT_EQ(r.code, kExitRpcError);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(r.err,
            "referral_cli backup verify: DATA_LOSS: backup 3: "
            "shared_checksum/000012.sst: checksum mismatch\n");

  verify.backup_id = 9;
  r = Run("backup", {"verify"}, verify, {"backup_id"});
  EXPECT_EQ(r.code, kExitRpcError);
  EXPECT_EQ(r.err, "referral_cli backup verify: NOT_FOUND: no backup 9\n");
}

TEST_F(CliCommandsTest, BackupUsageErrors) {
  Result r = Run("backup", {"restore"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("referral_cli backup: unknown action restore "
                               "(expects create, list or verify)\n"
                               "usage: referral_cli backup create|list|verify "
                               "[--backup_id=N]"));
  r = Run("backup", {"verify"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("backup verify: --backup_id is required"));
  CliOptions id;
  id.backup_id = 2;
  r = Run("backup", {"create"}, id, {"backup_id"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--backup_id applies to backup verify only"));
  r = Run("backup", {});
  EXPECT_EQ(r.code, kExitUsage);
}

// --- health
// --------------------------------------------------------------------

TEST_F(CliCommandsTest, HealthServingExitsZero) {
  Result r = Run("health", {});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "health SERVING service=-\n");

  CliOptions json;
  json.json = true;
  r = Run("health", {}, json, {"json"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  grpc::health::v1::HealthCheckResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &parsed).ok())
      << r.out;
  EXPECT_EQ(parsed.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(CliCommandsTest, HealthNotServingExitsOne) {
  broker_.SetServing("", false);
  const Result r = Run("health", {});
  EXPECT_EQ(r.code, kExitRpcError);
  EXPECT_EQ(r.out, "health NOT_SERVING service=-\n");
}

TEST_F(CliCommandsTest, HealthOfOneService) {
  broker_.SetServing("referral.v1.Triage", true);
  broker_.SetServing("referral.v1.ReferralIntake", false);
  CliOptions o;
  o.service = "referral.v1.Triage";
  Result r = Run("health", {}, o, {"service"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "health SERVING service=referral.v1.Triage\n");

  o.service = "referral.v1.ReferralIntake";
  r = Run("health", {}, o, {"service"});
  EXPECT_EQ(r.code, kExitRpcError);
  EXPECT_EQ(r.out, "health NOT_SERVING service=referral.v1.ReferralIntake\n");

  o.service = "no.such.Service";
  r = Run("health", {}, o, {"service"});
  EXPECT_EQ(r.code, kExitRpcError);
  EXPECT_THAT(r.err, StartsWith("referral_cli health: NOT_FOUND: "));
}

TEST(HealthCommandTest, AnUnreachableBrokerExitsOne) {
  // Nothing listens on port 1.
  const CliResult r = RunCli(ChannelTo("127.0.0.1:1"), "health", {}, {}, {});
  EXPECT_EQ(r.code, kExitRpcError);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, StartsWith("referral_cli health: UNAVAILABLE: "));
}

TEST_F(CliCommandsTest, UsageErrors) {
  // Wrong number of arguments.
  Result r = Run("status", {});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("referral_cli status: expects REFERRAL_ID\n"
                               "usage: referral_cli status REFERRAL_ID"));
  r = Run("stats", {"extra"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("takes no arguments"));
  // Required flags.
  r = Run("decide", {"REF-1"}, {}, {"token"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--decision is required"));
  r = Run("outcomes", {});
  EXPECT_THAT(r.err, HasSubstr("--agency is required"));
  // Bad values.
  CliOptions bad;
  bad.token = "t";
  bad.decision = "maybe";
  bad.rationale = "r";
  r = Run("decide", {"REF-1"}, bad, {"token", "decision", "rationale"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("unknown decision \"maybe\""));
  CliOptions zero;
  zero.token = "t";
  r = Run("extend", {"REF-1"}, zero, {"token", "lease_seconds"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--lease_seconds must be at least 1"));
  EXPECT_TRUE(broker_.decisions().empty());
}

TEST(CommandTableTest, UsageListsEveryCommandOnce) {
  const std::string usage = UsageText("referral_cli");
  std::set<std::string> names;
  for (const CommandSpec& spec : Commands()) {
    EXPECT_TRUE(names.insert(spec.name).second) << spec.name;
    EXPECT_THAT(usage, HasSubstr("\n  " + spec.name));
    EXPECT_EQ(FindCommand(spec.name), &spec);
    EXPECT_TRUE(IsCommandGroup(spec.group)) << spec.group;
    for (const std::string& flag : spec.required_flags) {
      EXPECT_NE(std::find(spec.flags.begin(), spec.flags.end(), flag),
                spec.flags.end())
          << spec.name << " requires undeclared --" << flag;
    }
  }
  EXPECT_EQ(names.size(), 18u);
  EXPECT_EQ(FindCommand("dead_letters"), FindCommand("dead-letters"));
  EXPECT_EQ(FindCommand("nope"), nullptr);
  // The operations commands sit in their groups.
  const size_t ops = usage.find("\nOperations:\n");
  const size_t admin = usage.find("\nAdministrators:\n");
  ASSERT_NE(ops, std::string::npos);
  ASSERT_NE(admin, std::string::npos);
  for (const char* command :
       {"\n  stats [--watch] [--watch_seconds=N] [--watch_count=N]\n",
        "\n  health [--service=NAME]\n"}) {
    const size_t at = usage.find(command);
    EXPECT_TRUE(at > ops && at < admin) << command;
  }
  EXPECT_GT(usage.find("\n  backup create|list|verify [--backup_id=N]\n"),
            admin);
  EXPECT_THAT(usage, HasSubstr("\n  --plaintext "));
  EXPECT_EQ(CommandUsage("referral_cli", *FindCommand("decide")),
            "usage: referral_cli decide REFERRAL_ID --token=T "
            "--decision=NAME --rationale=TEXT [--feedback=TEXT]");
}

TEST(NewIdempotencyKeyTest, IsAFreshUuidEachTime) {
  std::set<std::string> keys;
  for (int i = 0; i < 1000; ++i) keys.insert(NewIdempotencyKey());
  EXPECT_EQ(keys.size(), 1000u);
  EXPECT_THAT(*keys.begin(),
              MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]"
                           "{3}-[0-9a-f]{12}"));
}

}  // namespace
}  // namespace referral::clients
