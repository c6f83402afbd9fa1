// End to end: `referral_broker --check-config` on the shipped production
// example (deploy/config/broker.txtpb) moved to a temporary directory with
// real development certificates and key, and the broker serving from a
// settings file. A good configuration prints "config OK" and exits 0; a bad
// one exits 1 with the setting or file:line:column; checking never creates
// or opens the data directory; flags given on the command line override the
// file; unknown flags are refused; --help lists every setting.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/broker_process.h"
#include "support/dev_pki.h"

namespace referral {
namespace {

using ::referral::testing::ChildProcess;
using ::referral::testing::CommandResult;
using ::referral::testing::RunCommand;
using ::referral::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

void WriteFile(const std::string& path, const std::string& contents) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::trunc) << contents;
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
}

// The layout deploy/config/broker.txtpb describes, under a temporary
// directory: etc/ for /etc/referral-broker, with the shipped rules and
// principals, the development PKI's server certificate and CA, and a key.
class CheckConfigTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_dir_ = new TempDir();
    pki_status_ = new absl::Status(testing::MakeDevPki(pki_dir_->Sub("pki")));
  }
  static void TearDownTestSuite() {
    delete pki_status_;
    delete pki_dir_;
  }

  void SetUp() override {
    ASSERT_TRUE(pki_status_->ok()) << *pki_status_;
    const std::string shipped = REFERRAL_SOURCE_DIR "/server/config/";
    for (const char* name :
         {"routing.txtpb", "calendar.txtpb", "principals.txtpb"}) {
      fs::create_directories(Etc(""));
      fs::copy_file(shipped + name, Etc(name));
    }
    fs::create_directories(Etc("tls"));
    fs::copy_file(pki_dir_->Sub("pki/server.pem"), Etc("tls/broker.pem"));
    fs::copy_file(pki_dir_->Sub("pki/server.key"), Etc("tls/broker.key"));
    fs::copy_file(pki_dir_->Sub("pki/ca.pem"), Etc("tls/client-ca.pem"));
    WriteFile(Etc("secrets/encryption.key"),
              "00112233445566778899aabbccddeeff"
              "00112233445566778899aabbccddeeff\n");
    WriteFile(Config(), ShippedExample());
  }

  // deploy/config/broker.txtpb with its absolute paths moved under dir_.
  std::string ShippedExample() const {
    return absl::StrReplaceAll(
        ReadFile(REFERRAL_SOURCE_DIR "/deploy/config/broker.txtpb"),
        {{"/etc/referral-broker", dir_.Sub("etc")},
         {"/var/lib/referral-broker", DataDir()},
         {"/var/backups/referral-broker", dir_.Sub("backups")}});
  }

  std::string Etc(const std::string& name) const {
    return dir_.Sub("etc/" + name);
  }
  std::string Config() const { return Etc("broker.txtpb"); }
  std::string DataDir() const { return dir_.Sub("data"); }

  // The 1-based line of the file on which `text` starts.
  static int LineOf(const std::string& file, const std::string& text) {
    const std::string contents = ReadFile(file);
    const size_t at = contents.find(text);
    EXPECT_NE(at, std::string::npos) << text;
    return 1 + static_cast<int>(
                   std::count(contents.begin(), contents.begin() + at, '\n'));
  }

  CommandResult Check(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        REFERRAL_BROKER_BIN, "--config_file=" + Config(), "--check-config"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    absl::StatusOr<CommandResult> result = RunCommand(argv);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{};
  }

  static TempDir* pki_dir_;
  static absl::Status* pki_status_;
  TempDir dir_;
};

TempDir* CheckConfigTest::pki_dir_ = nullptr;
absl::Status* CheckConfigTest::pki_status_ = nullptr;

TEST_F(CheckConfigTest, TheShippedProductionExampleIsOk) {
  const CommandResult result = Check();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, StartsWith("config OK\n"));
  EXPECT_THAT(result.out, HasSubstr("config_file: " + Config() + "\n"));
  EXPECT_THAT(result.out, HasSubstr("listen: 0.0.0.0:50051\n"));
  EXPECT_THAT(result.out, HasSubstr("health_listen: 0.0.0.0:50052\n"));
  EXPECT_THAT(result.out, HasSubstr("metrics_listen: 0.0.0.0:9464\n"));
  EXPECT_THAT(result.out, HasSubstr("data_dir: " + DataDir() + "\n"));
  EXPECT_THAT(result.out, HasSubstr("backup_dir: " + dir_.Sub("backups")));
  EXPECT_THAT(result.out, HasSubstr("tls: on"));
  EXPECT_THAT(result.out, HasSubstr("encryption_at_rest: on\n"));
  EXPECT_THAT(result.out, HasSubstr("queues: ifd-urgent, ifd-triage, "
                                    "edt-out-of-hours, out-of-area\n"));
  EXPECT_THAT(result.err, IsEmpty());
}

TEST_F(CheckConfigTest, CheckingNeverCreatesTheDataOrBackupDirectory) {
  const CommandResult result = Check();
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_FALSE(fs::exists(DataDir()));
  EXPECT_FALSE(fs::exists(dir_.Sub("backups")));
}

TEST_F(CheckConfigTest, AlsoSpeltWithAnUnderscore) {
  const absl::StatusOr<CommandResult> result = RunCommand(
      {REFERRAL_BROKER_BIN, "--config_file=" + Config(), "--check_config"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->err;
  EXPECT_THAT(result->out, StartsWith("config OK\n"));
}

TEST_F(CheckConfigTest, ABrokenRoutingFileIsNamedWithLineAndColumn) {
  std::ofstream(Etc("routing.txtpb"), std::ios::app)
      << "\nqueues {\n  nam: \"typo\"\n}\n";
  const int line = LineOf(Etc("routing.txtpb"), "  nam:");
  const CommandResult result = Check();
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err,
              MatchesRegex(absl::StrCat(
                  "config error: routing_file: ", Etc("routing.txtpb"), ":",
                  line, ":[0-9]+: .*nam.*\n")));
  EXPECT_THAT(result.out, IsEmpty());
  EXPECT_FALSE(fs::exists(DataDir()));
}

TEST_F(CheckConfigTest, ABadValueIsReportedWhereTheFileSetsIt) {
  std::ofstream(Config(), std::ios::app) << "max_deliveries: 0\n";
  const int line = LineOf(Config(), "max_deliveries: 0");
  const CommandResult result = Check();
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err,
            absl::StrCat("config error: ", Config(), ":", line,
                         ":1: max_deliveries: must be at least 1 (got 0)\n"));
}

TEST_F(CheckConfigTest, AFlagOnTheCommandLineOverridesABadValueInTheFile) {
  std::ofstream(Config(), std::ios::app) << "max_deliveries: 0\n";
  const CommandResult result = Check({"--max_deliveries=3"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, StartsWith("config OK\n"));
}

TEST_F(CheckConfigTest, AFlagOnTheCommandLineOverridesAGoodValueInTheFile) {
  // The file's routing file is fine; the one given as a flag is not.
  WriteFile(dir_.Sub("other-routing.txtpb"), "queues {\n");
  const CommandResult result =
      Check({"--routing_file=" + dir_.Sub("other-routing.txtpb")});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, StartsWith("config error: routing_file: " +
                                     dir_.Sub("other-routing.txtpb") + ":2:"));
}

TEST_F(CheckConfigTest, AFlagGivenWithItsDefaultValueStillOverridesTheFile) {
  std::ofstream(Config(), std::ios::app) << "max_deliveries: 0\n";
  // 5 is the default: given on the command line, it still wins.
  const CommandResult result = Check({"--max_deliveries", "5"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, StartsWith("config OK\n"));
}

TEST_F(CheckConfigTest, UnknownFlagsAndStrayArgumentsAreRefused) {
  for (const std::vector<std::string>& extra :
       std::vector<std::vector<std::string>>{
           {"--lease_second=600"}, {"--insecure_development", "false"}}) {
    const CommandResult result = Check(extra);
    EXPECT_EQ(result.exit_code, 1) << extra[0];
    EXPECT_THAT(result.err, StartsWith("referral_broker: ")) << extra[0];
    EXPECT_THAT(result.err, HasSubstr("(see --help)")) << extra[0];
    EXPECT_THAT(result.out, IsEmpty());
  }
  EXPECT_THAT(Check({"--lease_second=600"}).err,
              HasSubstr("unknown flag --lease_second"));
  EXPECT_THAT(Check({"--lease_seconds=ten"}).err,
              HasSubstr("--lease_seconds: \"ten\" is not a whole number"));
}

TEST_F(CheckConfigTest, HelpListsEverySettingWithItsDefault) {
  const absl::StatusOr<CommandResult> help =
      RunCommand({REFERRAL_BROKER_BIN, "--help"});
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_EQ(help->exit_code, 0);
  EXPECT_THAT(help->out, HasSubstr("--config_file=VALUE"));
  EXPECT_THAT(help->out, HasSubstr("--check_config  (true or false"));
  EXPECT_THAT(help->out, HasSubstr("--lease_seconds=VALUE  (a whole number; "
                                   "default: 1800)"));
  EXPECT_THAT(help->out, HasSubstr("--log_level=VALUE  (default: info)"));
  // The docs' table, from the same declarations.
  const absl::StatusOr<CommandResult> table =
      RunCommand({REFERRAL_BROKER_BIN, "--settings_table"});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->exit_code, 0);
  EXPECT_THAT(ReadFile(REFERRAL_SOURCE_DIR "/docs/configuration.md"),
              HasSubstr(table->out));
}

TEST_F(CheckConfigTest, AnUnknownSettingInTheFileIsLocated) {
  std::ofstream(Config(), std::ios::app) << "lease_second: 600\n";
  const int line = LineOf(Config(), "lease_second: 600");
  const CommandResult result = Check();
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, StartsWith(absl::StrCat("config error: ", Config(),
                                                  ":", line, ":")));
  EXPECT_THAT(result.err, HasSubstr("lease_second"));
}

TEST_F(CheckConfigTest, AMissingConfigFileIsAnError) {
  const absl::StatusOr<CommandResult> result =
      RunCommand({REFERRAL_BROKER_BIN, "--config_file=" + dir_.Sub("none"),
                  "--check-config"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_EQ(result->err, "config error: config_file: " + dir_.Sub("none") +
                             ": cannot open file\n");
}

TEST_F(CheckConfigTest, AKeyFileOthersCanReadIsRefused) {
  fs::permissions(Etc("secrets/encryption.key"), fs::perms::others_read,
                  fs::perm_options::add);
  const CommandResult result = Check();
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("encryption_key_file: " +
                                    Etc("secrets/encryption.key") +
                                    ": must not be accessible to other users"));
}

TEST_F(CheckConfigTest, RelativePathsInTheFileAreTakenFromItsDirectory) {
  // The same settings with paths relative to etc/, checked from another
  // working directory (RunCommand keeps the test's).
  WriteFile(Config(),
            "listen: \"0.0.0.0:50051\"\n"
            "data_dir: \"../data\"\n"
            "encryption_key_file: \"secrets/encryption.key\"\n"
            "tls_certificate_file: \"tls/broker.pem\"\n"
            "tls_private_key_file: \"tls/broker.key\"\n"
            "tls_client_ca_file: \"tls/client-ca.pem\"\n"
            "principals_file: \"principals.txtpb\"\n"
            "routing_file: \"routing.txtpb\"\n"
            "calendar_file: \"calendar.txtpb\"\n");
  ASSERT_NE(fs::current_path(), fs::path(Etc("")));
  const CommandResult result = Check();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("data_dir: " + DataDir() + "\n"));
  EXPECT_THAT(result.out,
              HasSubstr("routing_file: " + Etc("routing.txtpb") + "\n"));
}

TEST_F(CheckConfigTest, WithoutAFileFlagsAndDefaultsAreChecked) {
  const absl::StatusOr<CommandResult> good =
      RunCommand({REFERRAL_BROKER_BIN, "--check-config",
                  "--insecure_development", "--data_dir=" + DataDir()});
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->exit_code, 0) << good->err;
  EXPECT_THAT(good->out, HasSubstr("listen: 127.0.0.1:50051\n"));
  EXPECT_THAT(good->out, HasSubstr("metrics_listen: 127.0.0.1:9464\n"));
  EXPECT_THAT(good->out, HasSubstr("tls: off"));

  // Without TLS or development mode the broker refuses to serve.
  const absl::StatusOr<CommandResult> bad = RunCommand(
      {REFERRAL_BROKER_BIN, "--check-config", "--data_dir=" + DataDir()});
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->exit_code, 1);
  EXPECT_THAT(bad->err, StartsWith("config error: tls_certificate_file: "));
}

// Not only checked: the broker serves with the settings from the file,
// and writes its port files (named relative to the file) before serving.
TEST_F(CheckConfigTest, TheBrokerServesWithSettingsFromTheFile) {
  WriteFile(Config(),
            "listen: \"127.0.0.1:0\"\n"
            "metrics_listen: \"127.0.0.1:0\"\n"
            "health_listen: \"127.0.0.1:0\"\n"
            "insecure_development: true\n"
            "data_dir: \"../data\"\n"
            "port_file: \"run/broker.port\"\n"
            "metrics_port_file: \"run/metrics.port\"\n"
            "health_port_file: \"run/health.port\"\n"
            "shutdown_grace_seconds: 1\n");
  fs::create_directories(Etc("run"));
  absl::StatusOr<std::unique_ptr<ChildProcess>> broker =
      ChildProcess::Start({REFERRAL_BROKER_BIN, "--config_file=" + Config()},
                          dir_.Sub("broker.out"), dir_.Sub("broker.err"));
  ASSERT_TRUE(broker.ok()) << broker.status();
  ASSERT_TRUE(testing::WaitForFileToContain(Etc("run/broker.port"), "\n",
                                            absl::Seconds(60)))
      << ReadFile(dir_.Sub("broker.err"));
  // Written before the gRPC port file.
  EXPECT_GT(std::stoi(ReadFile(Etc("run/metrics.port"))), 0);
  EXPECT_GT(std::stoi(ReadFile(Etc("run/health.port"))), 0);
  EXPECT_TRUE(fs::is_directory(DataDir()));
  (*broker)->Signal(SIGTERM);
  const absl::StatusOr<int> exit_code = (*broker)->Wait();
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0) << ReadFile(dir_.Sub("broker.err"));
}

TEST_F(CheckConfigTest, TheBrokerRefusesToStartWithABadFile) {
  std::ofstream(Config(), std::ios::app) << "lease_seconds: 0\n";
  const absl::StatusOr<CommandResult> result =
      RunCommand({REFERRAL_BROKER_BIN, "--config_file=" + Config()});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_THAT(result->err,
              HasSubstr("lease_seconds: must be positive (got 0)"));
  EXPECT_FALSE(fs::exists(DataDir()));
}

}  // namespace
}  // namespace referral
