// The real referral_cli (and referral_loadgen) against a real broker
// process: the example referrals go through submission, triage, decision,
// outcome and acknowledgement exactly as a user would drive them, and
// mistakes give clear messages and the documented exit codes.
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "referral/v1/referral.pb.h"
#include "support/broker_process.h"
#include "support/dev_pki.h"

namespace referral {
namespace {

using ::referral::testing::BrokerProcess;
using ::referral::testing::ChildProcess;
using ::referral::testing::CommandResult;
using ::referral::testing::ReadWholeFile;
using ::referral::testing::RunCommand;
using ::referral::testing::TempDir;
using ::referral::testing::WaitForFileToContain;
using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kExamples[] = {"police-domestic-abuse.json",
                                     "school-neglect.json",
                                     "hospital-immediate-risk.json"};

std::string ExamplePath(const std::string& name) {
  return absl::StrCat(REFERRAL_SOURCE_DIR, "/clients/examples/", name);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The agency an example is submitted as (outcomes are listed per agency).
std::string AgencyOf(const std::string& path) {
  v1::Referral referral;
  const auto status =
      google::protobuf::util::JsonStringToMessage(ReadFile(path), &referral);
  EXPECT_TRUE(status.ok()) << path << ": " << status.ToString();
  return referral.referrer().agency_id();
}

// "key=value" from a line of human output ("" when absent).
std::string Field(const std::string& line, const std::string& key) {
  std::smatch m;
  if (std::regex_search(line, m, std::regex("(?:^| )" + key + "=(\\S+)"))) {
    return m[1];
  }
  return "";
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

class CliSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<BrokerProcess>> broker =
        BrokerProcess::Start(
            {.data_dir = tmp_.Sub("data"), .log_file = tmp_.Sub("broker.log")});
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "--- broker log ---\n"
                << ReadFile(tmp_.Sub("broker.log")) << "---\n";
    }
  }

  CommandResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(),
                {REFERRAL_CLI_BIN, "--server=" + broker_->address()});
    absl::StatusOr<CommandResult> result = RunCommand(args);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult();
  }

  struct Submitted {
    std::string id;
    std::string queue;
  };
  Submitted Submit(const std::string& path, const std::string& key) {
    const CommandResult r = Cli({"submit", path, "--idempotency_key=" + key});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::smatch m;
    const bool matched = std::regex_search(
        r.out, m,
        std::regex("^submitted (REF-[0-9]{4}-[0-9]{6}) queue=(\\S+) "
                   "duplicate=false "));
    EXPECT_TRUE(matched) << r.out;
    return matched ? Submitted{m[1], m[2]} : Submitted{};
  }

  TempDir tmp_;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(CliSystemTest, ExamplesGoFromSubmissionToAcknowledgedOutcome) {
  std::map<std::string, Submitted> submitted;  // by example file
  for (const char* example : kExamples) {
    const std::string path = ExamplePath(example);
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    submitted[example] = Submit(path, absl::StrCat("system-", example));
    ASSERT_FALSE(submitted[example].id.empty()) << example;

    // Resubmitting with the same key returns the same referral.
    const CommandResult again = Cli(
        {"submit", path, absl::StrCat("--idempotency_key=system-", example)});
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_THAT(again.out,
                StartsWith("submitted " + submitted[example].id + " "));
    EXPECT_EQ(Field(again.out, "duplicate"), "true");
  }

  for (const auto& [example, s] : submitted) {
    const CommandResult status = Cli({"status", s.id});
    ASSERT_EQ(status.exit_code, 0) << status.err;
    EXPECT_THAT(status.out, StartsWith("referral " + s.id + " state=queued "));
    EXPECT_EQ(Field(Lines(status.out)[0], "queue"), s.queue);
    EXPECT_THAT(status.out,
                ContainsRegex("\nhistory " + s.id + " stage=received "));

    const CommandResult list = Cli({"list", s.queue});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    EXPECT_THAT(list.out, HasSubstr("entry " + s.id + " "));
    EXPECT_THAT(list.out, ContainsRegex("\npage entries=[0-9]+ "));
  }

  // Claim each queue and decide everything claimed.
  std::map<std::string, std::string> tokens;  // referral id -> lease token
  std::set<std::string> queues;
  for (const auto& [example, s] : submitted) queues.insert(s.queue);
  for (const std::string& queue : queues) {
    const CommandResult claim =
        Cli({"claim", queue, "--max=10", "--worker=alice"});
    ASSERT_EQ(claim.exit_code, 0) << claim.err;
    for (const std::string& line : Lines(claim.out)) {
      std::smatch m;
      ASSERT_TRUE(std::regex_search(line, m, std::regex("^claimed (\\S+) ")))
          << line;
      EXPECT_EQ(Field(line, "attempt"), "1");
      tokens[m[1]] = Field(line, "token");
    }
  }
  for (const auto& [example, s] : submitted) {
    ASSERT_TRUE(tokens.count(s.id)) << "not claimed: " << s.id;
    const CommandResult decide =
        Cli({"decide", s.id, "--token=" + tokens[s.id], "--decision=early-help",
             "--rationale=Family agreed to support",
             "--feedback=Referred to the early help team."});
    ASSERT_EQ(decide.exit_code, 0) << decide.err;
    EXPECT_THAT(decide.out, StartsWith("decided " + s.id +
                                       " decision=early-help state=decided "));
  }

  for (const auto& [example, s] : submitted) {
    const std::string agency = AgencyOf(ExamplePath(example));
    const CommandResult outcomes = Cli({"outcomes", "--agency=" + agency});
    ASSERT_EQ(outcomes.exit_code, 0) << outcomes.err;
    EXPECT_THAT(outcomes.out,
                HasSubstr("outcome " + s.id + " decision=early-help "));

    const CommandResult ack = Cli({"ack", s.id});
    ASSERT_EQ(ack.exit_code, 0) << ack.err;
    EXPECT_THAT(ack.out, StartsWith("acknowledged " + s.id + " "));
    EXPECT_EQ(Field(ack.out, "already_acknowledged"), "false");

    const CommandResult status = Cli({"status", s.id});
    EXPECT_THAT(status.out, StartsWith("referral " + s.id +
                                       " state=outcome-acknowledged "));
    EXPECT_EQ(Field(Lines(status.out)[0], "decision"), "early-help");
  }

  const CommandResult stats = Cli({"stats"});
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_THAT(stats.out, StartsWith("QUEUE "));
  for (const std::string& queue : queues) {
    EXPECT_THAT(stats.out, ContainsRegex("\n" + queue + " +0 +0 +0 "));
  }
  const CommandResult stats_json = Cli({"stats", "--json"});
  ASSERT_EQ(stats_json.exit_code, 0) << stats_json.err;
  EXPECT_THAT(stats_json.out, StartsWith("{\"queues\":["));
}

TEST_F(CliSystemTest, ReleasePutsAReferralBackWithItsReason) {
  const Submitted s =
      Submit(ExamplePath("school-neglect.json"), "system-release");
  const CommandResult claim = Cli({"claim", s.queue, "--worker=bob"});
  ASSERT_EQ(claim.exit_code, 0) << claim.err;
  const std::string token = Field(claim.out, "token");
  ASSERT_FALSE(token.empty()) << claim.out;

  const CommandResult extend =
      Cli({"extend", s.id, "--token=" + token, "--lease_seconds=600"});
  ASSERT_EQ(extend.exit_code, 0) << extend.err;
  EXPECT_THAT(extend.out, StartsWith("extended " + s.id + " lease_expires="));

  const CommandResult release = Cli({"release", s.id, "--token=" + token,
                                     "--reason=Waiting for a police check"});
  ASSERT_EQ(release.exit_code, 0) << release.err;
  EXPECT_EQ(release.out, "released " + s.id + " state=queued\n");

  const CommandResult status = Cli({"status", s.id});
  EXPECT_THAT(status.out, StartsWith("referral " + s.id + " state=queued "));
  EXPECT_THAT(status.out, HasSubstr("stage=released "));
  EXPECT_THAT(status.out, HasSubstr("detail=\"Waiting for a police check\""));

  // The old token is stale now.
  const CommandResult stale = Cli(
      {"decide", s.id, "--token=" + token, "--decision=nfa", "--rationale=x"});
  EXPECT_EQ(stale.exit_code, 1);
  EXPECT_THAT(stale.err, HasSubstr("FAILED_PRECONDITION"));
}

TEST_F(CliSystemTest, SubmitFromStdinAndJsonOutput) {
  const absl::StatusOr<CommandResult> r = RunCommand(
      {"/bin/sh", "-c",
       absl::StrCat("exec \"$0\" --server=\"$1\" --json submit - < \"$2\""),
       REFERRAL_CLI_BIN, broker_->address(),
       ExamplePath("police-domestic-abuse.json")});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_THAT(r->out, StartsWith("{\"referral_id\":\"REF-"));
  // No key given: one was made up and reported for a safe retry.
  EXPECT_THAT(r->err, HasSubstr("no --idempotency_key given; using "));
}

TEST_F(CliSystemTest, BadFileIsAUsageErrorThatQuotesNothing) {
  const std::string path = tmp_.Sub("bad.json");
  std::ofstream(path) << "{\n  \"children\": [{\"givenName\": "
                         "\"Confidential Name\",}]\n}\n";
  CommandResult r = Cli({"submit", path, "--idempotency_key=bad"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr(path + ": line 2, column "),
                           HasSubstr("trailing comma"),
                           Not(HasSubstr("Confidential"))));
  EXPECT_THAT(r.out, IsEmpty());

  std::ofstream(path) << R"({"children": [{"sex": "girl"}]})";
  r = Cli({"submit", path, "--idempotency_key=bad"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("children[0].sex: unknown Sex name"));

  r = Cli({"submit", tmp_.Sub("missing.json")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("cannot open"));
}

TEST_F(CliSystemTest, BrokerValidationErrorsExitOne) {
  const std::string path = tmp_.Sub("empty.json");
  std::ofstream(path) << "{}";
  const CommandResult r = Cli({"submit", path, "--idempotency_key=empty"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("referral_cli submit: INVALID_ARGUMENT: "));
}

TEST_F(CliSystemTest, UnknownReferralIsNotFound) {
  for (const char* command : {"status", "ack", "requeue"}) {
    const CommandResult r = Cli({command, "REF-2099-999999"});
    EXPECT_EQ(r.exit_code, 1) << command;
    EXPECT_THAT(r.err, HasSubstr(absl::StrCat("referral_cli ", command,
                                              ": NOT_FOUND")));
  }
}

TEST_F(CliSystemTest, UsageErrorsExitTwo) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{},
                                             {"frobnicate"},
                                             {"status"},
                                             {"list", "q", "--max=3"},
                                             {"decide", "REF-1", "--token=t"},
                                             {"stats", "--bogus"},
                                             {"claim", "q", "--max=lots"}}) {
    const CommandResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ") << "\n" << r.err;
    EXPECT_THAT(r.err, Not(IsEmpty()));
  }
  const CommandResult help = Cli({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("dead-letters QUEUE"));
}

TEST_F(CliSystemTest, DeadLettersListsAQueue) {
  const Submitted s =
      Submit(ExamplePath("school-neglect.json"), "system-dead-letters");
  const CommandResult r = Cli({"dead-letters", s.queue});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("page dead_letters=0 next_page_token=-\n"));
}

TEST_F(CliSystemTest, WatchPrintsArrivalsUntilInterrupted) {
  const Submitted first =
      Submit(ExamplePath("school-neglect.json"), "system-watch-1");
  const std::string out = tmp_.Sub("watch.out");
  const std::string err = tmp_.Sub("watch.err");
  auto watch =
      ChildProcess::Start({REFERRAL_CLI_BIN, "--server=" + broker_->address(),
                           "watch", first.queue},
                          out, err);
  ASSERT_TRUE(watch.ok());
  // Registered with the broker: nothing submitted from now on is missed.
  ASSERT_TRUE(
      WaitForFileToContain(err, "watching " + first.queue, absl::Seconds(30)));
  const Submitted second =
      Submit(ExamplePath("school-neglect.json"), "system-watch-2");
  ASSERT_TRUE(
      WaitForFileToContain(out, "arrived " + second.id, absl::Seconds(30)));
  // Ctrl-C ends the watch cleanly.
  (*watch)->Signal(SIGINT);
  absl::StatusOr<int> exit_code = (*watch)->Wait();
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0);
  const std::string printed = *ReadWholeFile(out);
  EXPECT_THAT(printed, ContainsRegex("arrived " + second.id +
                                     " queue=" + first.queue + " "));
}

TEST_F(CliSystemTest, BrokerDownIsUnavailable) {
  broker_->Kill();
  const CommandResult r = Cli({"stats", "--timeout=5s"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("referral_cli stats: UNAVAILABLE"));
}

TEST_F(CliSystemTest, LoadgenSubmitsAndDrains) {
  // Someone else's referral in the queue the load goes to.
  const Submitted other =
      Submit(ExamplePath("police-domestic-abuse.json"), "system-bystander");
  const absl::StatusOr<CommandResult> r =
      RunCommand({REFERRAL_LOADGEN_BIN, "--server=" + broker_->address(),
                  "--n=200", "--concurrency=16", "--drain_workers=2",
                  "--claim_batch=20", "--drain_timeout=120s"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0) << r->out << r->err;
  EXPECT_THAT(r->out, HasSubstr("submit   ok=200 failed=0 "));
  EXPECT_THAT(r->out, HasSubstr("decide   ok=200 failed=0 "));
  EXPECT_THAT(r->out, HasSubstr("result   OK\n"));
  // The bystander was claimed at most once and given back: not decided,
  // and not worn down to a dead letter.
  const CommandResult status = Cli({"status", other.id});
  EXPECT_THAT(status.out,
              StartsWith("referral " + other.id + " state=queued "));
  EXPECT_THAT(Field(Lines(status.out)[0], "attempts"),
              ::testing::AnyOf("0", "1"));

  const absl::StatusOr<CommandResult> json =
      RunCommand({REFERRAL_LOADGEN_BIN, "--server=" + broker_->address(),
                  "--n=20", "--json"});
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->exit_code, 0) << json->out << json->err;
  EXPECT_THAT(json->out,
              AllOf(StartsWith("{\"n\":20,"), HasSubstr("\"ok\":true}")));
}

}  // namespace
}  // namespace referral
