// Personal data stays where it belongs, checked through the real broker
// binary: a child's name sent in a referral appears in no file of the data
// directory (encryption at rest), no backup file, no log line and no metric;
// the referral is read back after a restart with the same key, and a wrong
// key stops the broker with a clear error and changes nothing.
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/broker_process.h"
#include "support/dev_pki.h"
#include "support/http_get.h"
#include "support/sample_referral.h"

namespace referral {
namespace {

using ::referral::testing::BrokerClients;
using ::referral::testing::BrokerProcess;
using ::referral::testing::ReadWholeFile;
using ::referral::testing::RunCommand;
using ::referral::testing::SampleReferral;
using ::referral::testing::TempDir;
using ::testing::HasSubstr;

// Fictitious and distinctive, so a plain-text copy anywhere would be found.
constexpr char kGivenName[] = "Quorisande";
constexpr char kFamilyName[] = "Vexbrightly";
constexpr char kBadNhsNumber[] = "9434765871";

std::string MakeKey(const TempDir& dir, const std::string& name) {
  const std::string path = dir.Sub(name);
  auto made = RunCommand(
      {"/bin/bash",
       absl::StrCat(REFERRAL_SOURCE_DIR, "/deploy/make-encryption-key.sh"),
       path});
  EXPECT_TRUE(made.ok() && made->exit_code == 0);
  return path;
}

// Every file under `root` that contains `text` in plain bytes.
std::vector<std::string> FilesContaining(const std::string& root,
                                         const std::string& text) {
  std::vector<std::string> found;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    auto contents = ReadWholeFile(entry.path().string());
    if (contents.ok() && contents->find(text) != std::string::npos) {
      found.push_back(entry.path().string());
    }
  }
  return found;
}

TEST(PersonalDataTest, NoPersonalDataInTheDataDirectoryAndAWrongKeyIsRefused) {
  TempDir dir;
  const std::string key = MakeKey(dir, "broker.key");
  const std::string data = dir.Sub("data");
  // Production settings: mutual TLS with the development PKI.
  const std::string pki = dir.Sub("pki");
  ASSERT_TRUE(testing::MakeDevPki(pki).ok());
  std::vector<std::string> flags = {
      "--tls_certificate_file=" + pki + "/server.pem",
      "--tls_private_key_file=" + pki + "/server.key",
      "--tls_client_ca_file=" + pki + "/ca.pem",
      absl::StrCat("--principals_file=", REFERRAL_SOURCE_DIR,
                   "/server/config/principals.txtpb"),
      "--encryption_key_file=" + key,
      "--backup_dir=" + dir.Sub("backups")};
  std::string referral_id;
  std::string metrics;
  {
    auto broker = BrokerProcess::Start({.data_dir = data,
                                        .flags = flags,
                                        .insecure_development = false,
                                        .log_file = dir.Sub("broker.log")});
    ASSERT_TRUE(broker.ok()) << broker.status();
    auto channel =
        testing::TlsChannel((*broker)->address(), pki, "cambs-police");
    ASSERT_TRUE(channel.ok());
    BrokerClients clients(*channel);
    grpc::ClientContext context;
    v1::SubmitReferralRequest request;
    *request.mutable_referral() =
        SampleReferral({.given_name = kGivenName, .family_name = kFamilyName});
    request.set_idempotency_key("encrypted-1");
    v1::SubmitReferralResponse response;
    ASSERT_TRUE(
        clients.intake->SubmitReferral(&context, request, &response).ok());
    referral_id = response.referral_id();
    // And a rejected one: an invalid NHS number next to the same name.
    grpc::ClientContext bad_context;
    request.mutable_referral()->mutable_children(0)->set_nhs_number(
        kBadNhsNumber);
    request.set_idempotency_key("encrypted-2");
    EXPECT_EQ(clients.intake->SubmitReferral(&bad_context, request, &response)
                  .error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    // An online backup (as admin) is encrypted like the store itself.
    auto admin_channel =
        testing::TlsChannel((*broker)->address(), pki, "admin");
    ASSERT_TRUE(admin_channel.ok());
    BrokerClients admin(*admin_channel);
    grpc::ClientContext backup_context;
    v1::CreateBackupResponse backup;
    ASSERT_TRUE(
        admin.operations->CreateBackup(&backup_context, {}, &backup).ok());
    // What Prometheus would scrape.
    auto scraped = testing::HttpGet((*broker)->metrics_port(), "/metrics");
    ASSERT_TRUE(scraped.ok()) << scraped.status();
    metrics = scraped->body;
    ASSERT_THAT(metrics, HasSubstr("referral_intake_total"));
    // A clean shutdown flushes memtables into table files too.
    ASSERT_TRUE((*broker)->Terminate().ok());
  }
  EXPECT_THAT(FilesContaining(dir.Sub("backups"), kGivenName),
              ::testing::IsEmpty());
  EXPECT_THAT(FilesContaining(dir.Sub("backups"), kFamilyName),
              ::testing::IsEmpty());
  EXPECT_THAT(FilesContaining(data, kGivenName), ::testing::IsEmpty());
  EXPECT_THAT(FilesContaining(data, kFamilyName), ::testing::IsEmpty());
  EXPECT_THAT(FilesContaining(data, referral_id), ::testing::IsEmpty());

  // The log says what happened, by id and field, and nothing personal.
  auto log = ReadWholeFile(dir.Sub("broker.log"));
  ASSERT_TRUE(log.ok());
  EXPECT_THAT(*log, HasSubstr(referral_id));
  EXPECT_THAT(*log, HasSubstr("children[0].nhs_number"));
  const v1::Referral sample =
      SampleReferral({.given_name = kGivenName, .family_name = kFamilyName});
  for (const std::string& personal :
       {std::string(kGivenName), std::string(kFamilyName),
        std::string(kBadNhsNumber), sample.children(0).nhs_number(),
        sample.children(0).address().postcode(),
        sample.children(0).address().lines(0), sample.description(),
        sample.child_voice().words(), sample.referrer().name()}) {
    EXPECT_THAT(*log, ::testing::Not(HasSubstr(personal))) << personal;
    EXPECT_THAT(metrics, ::testing::Not(HasSubstr(personal))) << personal;
  }

  // Another key: the broker refuses to start and says why.
  const std::string wrong = MakeKey(dir, "wrong.key");
  auto refused = RunCommand({REFERRAL_BROKER_BIN, "--listen=127.0.0.1:0",
                             "--data_dir=" + data, "--insecure_development",
                             "--encryption_key_file=" + wrong});
  ASSERT_TRUE(refused.ok());
  EXPECT_NE(refused->exit_code, 0);
  EXPECT_THAT(refused->err, HasSubstr("encryption key does not match"));

  // The right key still reads the referral: nothing was damaged.
  auto broker = BrokerProcess::Start(
      {.data_dir = data, .flags = flags, .insecure_development = false});
  ASSERT_TRUE(broker.ok()) << broker.status();
  auto channel = testing::TlsChannel((*broker)->address(), pki, "cambs-police");
  ASSERT_TRUE(channel.ok());
  BrokerClients clients(*channel);
  grpc::ClientContext context;
  v1::GetReferralStatusRequest request;
  request.set_referral_id(referral_id);
  v1::GetReferralStatusResponse status;
  grpc::Status read =
      clients.intake->GetReferralStatus(&context, request, &status);
  EXPECT_TRUE(read.ok()) << read.error_message();
  EXPECT_EQ(status.referral_id(), referral_id);
}

}  // namespace
}  // namespace referral
