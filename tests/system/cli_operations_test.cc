// The real referral_cli's operations commands against a real broker
// process: `stats` (table, --json, --watch), `health` (on the main port
// and on the plaintext health-only port a container probe uses) and
// `backup create|list|verify`, with the documented output and exit codes.
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "referral/v1/broker.pb.h"
#include "support/broker_process.h"
#include "support/dev_pki.h"

namespace referral {
namespace {

using ::referral::testing::BrokerProcess;
using ::referral::testing::BrokerProcessOptions;
using ::referral::testing::ChildProcess;
using ::referral::testing::CommandResult;
using ::referral::testing::ReadWholeFile;
using ::referral::testing::RunCommand;
using ::referral::testing::TempDir;
using ::referral::testing::WaitForFileToContain;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

std::string ExamplePath(const std::string& name) {
  return absl::StrCat(REFERRAL_SOURCE_DIR, "/clients/examples/", name);
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + what.size())) {
    ++n;
  }
  return n;
}

class CliOperationsTest : public ::testing::Test {
 protected:
  // A broker with a backup directory and the plaintext health port.
  void SetUp() override { StartBroker({"--backup_dir=" + backup_dir()}); }

  void TearDown() override {
    if (HasFailure()) {
      absl::StatusOr<std::string> log = ReadWholeFile(tmp_.Sub("broker.log"));
      std::cerr << "--- broker log ---\n"
                << (log.ok() ? *log : std::string()) << "---\n";
    }
  }

  void StartBroker(std::vector<std::string> flags) {
    broker_.reset();
    BrokerProcessOptions options;
    options.data_dir = tmp_.Sub("data");
    options.flags = std::move(flags);
    options.log_file = tmp_.Sub("broker.log");
    options.health_port = true;
    absl::StatusOr<std::unique_ptr<BrokerProcess>> broker =
        BrokerProcess::Start(options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
  }

  std::string backup_dir() const { return tmp_.Sub("backups"); }

  CommandResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(),
                {REFERRAL_CLI_BIN, "--server=" + broker_->address()});
    absl::StatusOr<CommandResult> result = RunCommand(args);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult();
  }

  // Submits an example; returns the queue it went to.
  std::string Submit(const std::string& example, const std::string& key) {
    const CommandResult r =
        Cli({"submit", ExamplePath(example), "--idempotency_key=" + key});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::smatch m;
    const bool matched = std::regex_search(
        r.out, m, std::regex("^submitted REF-[0-9]{4}-[0-9]{6} queue=(\\S+) "));
    EXPECT_TRUE(matched) << r.out;
    return matched ? std::string(m[1]) : "";
  }

  // Referrals submitted per queue.
  std::map<std::string, int> SubmitTwo() {
    std::map<std::string, int> submitted;
    ++submitted[Submit("police-domestic-abuse.json", "ops-1")];
    ++submitted[Submit("school-neglect.json", "ops-2")];
    return submitted;
  }

  TempDir tmp_;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(CliOperationsTest, StatsShowsTheReadyDepthAsTableAndJson) {
  const std::map<std::string, int> submitted = SubmitTwo();

  const CommandResult table = Cli({"stats"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, StartsWith("QUEUE "))
      << "a single call prints the table alone";
  for (const auto& [queue, count] : submitted) {
    EXPECT_THAT(table.out, ContainsRegex(absl::StrCat("\n", queue, " +", count,
                                                      " +0 +0 ")))
        << table.out;
  }

  const CommandResult json = Cli({"stats", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  ASSERT_EQ(Lines(json.out).size(), 1u) << json.out;
  v1::GetQueueStatsResponse stats;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(json.out, &stats).ok())
      << json.out;
  std::map<std::string, int64_t> ready;
  for (const v1::QueueStats& q : stats.queues())
    ready[q.queue()] = q.ready_count();
  for (const auto& [queue, count] : submitted) {
    EXPECT_EQ(ready[queue], count) << queue;
  }
  EXPECT_GT(stats.at().seconds(), 0) << "the time of the figures";
}

TEST_F(CliOperationsTest, StatsWatchIntoAPipePrintsEachRefreshWithItsTime) {
  const std::map<std::string, int> submitted = SubmitTwo();
  const CommandResult r =
      Cli({"stats", "--watch", "--watch_count=2", "--watch_seconds=1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Count(r.out, "--- stats at "), 2) << r.out;
  EXPECT_THAT(r.out,
              MatchesRegex("--- stats at [-0-9T:]+Z ---\nQUEUE (.|\n)*"));
  EXPECT_EQ(Count(r.out, " ---\nQUEUE "), 2) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "no control codes";
  for (const auto& [queue, count] : submitted) {
    // The queue's row of the depth table, in each refresh.
    const std::regex row(absl::StrCat("\n", queue, " +", count, " +0 +0 "));
    EXPECT_EQ(
        std::distance(std::sregex_iterator(r.out.begin(), r.out.end(), row),
                      std::sregex_iterator()),
        2)
        << queue;
  }
  EXPECT_THAT(r.err, IsEmpty());
}

TEST_F(CliOperationsTest, StatsWatchJsonIsOneObjectPerRefresh) {
  SubmitTwo();
  const CommandResult r = Cli(
      {"stats", "--watch", "--watch_count=2", "--watch_seconds=1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  for (const std::string& line : lines) {
    v1::GetQueueStatsResponse stats;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(line, &stats).ok())
        << line;
    EXPECT_FALSE(stats.queues().empty());
  }
}

TEST_F(CliOperationsTest, StatsWatchEndsCleanlyOnCtrlC) {
  const std::string out = tmp_.Sub("watch.out");
  const std::string err = tmp_.Sub("watch.err");
  // An interval far longer than any test: only the signal can end it.
  absl::StatusOr<std::unique_ptr<ChildProcess>> watch =
      ChildProcess::Start({REFERRAL_CLI_BIN, "--server=" + broker_->address(),
                           "stats", "--watch", "--watch_seconds=3600"},
                          out, err);
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE(WaitForFileToContain(out, "\nQUEUE ", absl::Seconds(30)));
  (*watch)->Signal(SIGINT);
  const absl::StatusOr<int> exit_code = (*watch)->Wait();
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0) << *ReadWholeFile(err);
  EXPECT_EQ(Count(*ReadWholeFile(out), "--- stats at "), 1);
}

TEST_F(CliOperationsTest, HealthIsServingOnTheMainPort) {
  CommandResult r = Cli({"health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "health SERVING service=-\n");
  for (const char* service : {"referral.v1.ReferralIntake",
                              "referral.v1.Triage", "referral.v1.Operations"}) {
    r = Cli({"health", absl::StrCat("--service=", service)});
    EXPECT_EQ(r.exit_code, 0) << service << ": " << r.err;
    EXPECT_EQ(r.out, absl::StrCat("health SERVING service=", service, "\n"));
  }
  r = Cli({"health", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"status\":\"SERVING\"}\n");
}

// The command a container HEALTHCHECK runs: the plaintext health-only port,
// with TLS variables in the environment that --plaintext must ignore.
TEST_F(CliOperationsTest, HealthOnThePlaintextHealthPortAsAContainerProbe) {
  ASSERT_GT(broker_->health_port(), 0);
  const absl::StatusOr<CommandResult> r =
      RunCommand({"/usr/bin/env", "REFERRAL_CA=/nonexistent/ca.pem",
                  "REFERRAL_CERT=/nonexistent/cert.pem",
                  "REFERRAL_KEY=/nonexistent/key.pem", REFERRAL_CLI_BIN,
                  absl::StrCat("--server=127.0.0.1:", broker_->health_port()),
                  "--plaintext", "health"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->out, "health SERVING service=-\n");
}

TEST_F(CliOperationsTest, HealthOfAStoppedBrokerExitsOne) {
  const std::string health_address =
      absl::StrCat("127.0.0.1:", broker_->health_port());
  ASSERT_TRUE(broker_->Terminate().ok());
  const absl::StatusOr<CommandResult> r =
      RunCommand({REFERRAL_CLI_BIN, "--server=" + health_address, "--plaintext",
                  "health"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_THAT(r->err, StartsWith("referral_cli health: UNAVAILABLE: "));
  EXPECT_THAT(r->out, IsEmpty());
}

// The largest data file in the backup directory (not the metadata that
// lists the files): one a verify must re-read to notice damage.
std::filesystem::path LargestBackupFile(const std::string& backup_dir) {
  std::filesystem::path largest;
  uintmax_t largest_size = 0;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(backup_dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string relative =
        std::filesystem::relative(entry.path(), backup_dir).string();
    if (relative.rfind("meta", 0) == 0) continue;
    if (entry.file_size() > largest_size) {
      largest = entry.path();
      largest_size = entry.file_size();
    }
  }
  return largest;
}

TEST_F(CliOperationsTest, BackupCreateListVerify) {
  SubmitTwo();
  CommandResult r = Cli({"backup", "create"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      r.out, m,
      std::regex("backup ([0-9]+) created=[-0-9T:]+Z "
                 "size=[0-9.]+(B|KiB|MiB|GiB) files=([0-9]+)\n")))
      << r.out;
  const std::string id = m[1];
  EXPECT_GT(std::stoi(m[3]), 0);

  r = Cli({"backup", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Lines(r.out).size(), 1u) << r.out;
  EXPECT_THAT(r.out, StartsWith("backup " + id + " created="));

  r = Cli({"backup", "list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::ListBackupsResponse list;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &list).ok())
      << r.out;
  ASSERT_EQ(list.backups_size(), 1);
  EXPECT_EQ(absl::StrCat(list.backups(0).backup_id()), id);
  EXPECT_GT(list.backups(0).size_bytes(), 0);

  r = Cli({"backup", "verify", "--backup_id=" + id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("backup " + id + " verified: created="));

  r = Cli({"backup", "verify", "--backup_id=999"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("referral_cli backup verify: NOT_FOUND: "));
}

TEST_F(CliOperationsTest, BackupVerifyNamesADamagedFile) {
  SubmitTwo();
  const CommandResult created = Cli({"backup", "create"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(created.out, m, std::regex("^backup ([0-9]+) ")))
      << created.out;
  const std::string id = m[1];

  // Flip one byte in the middle: same size, different checksum.
  const std::filesystem::path damaged = LargestBackupFile(backup_dir());
  ASSERT_FALSE(damaged.empty());
  {
    std::fstream file(damaged, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(file);
    const std::streamoff middle =
        static_cast<std::streamoff>(std::filesystem::file_size(damaged) / 2);
    file.seekg(middle);
    char byte = 0;
    file.get(byte);
    file.seekp(middle);
    file.put(static_cast<char>(byte ^ 0x5a));
  }

  const CommandResult r = Cli({"backup", "verify", "--backup_id=" + id});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("referral_cli backup verify: DATA_LOSS: "));
  EXPECT_THAT(r.err, HasSubstr(damaged.filename().string()));
  EXPECT_THAT(r.out, IsEmpty());
}

TEST_F(CliOperationsTest, BackupWithoutABackupDirectoryIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartBroker({}));
  const CommandResult r = Cli({"backup", "create"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err,
              StartsWith("referral_cli backup create: FAILED_PRECONDITION: "));
}

}  // namespace
}  // namespace referral
