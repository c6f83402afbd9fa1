// Authorisation over real mutual TLS on loopback: the development PKI is
// generated for this test, the broker maps certificates to principals
// through the shipped principals file, and every role is tried against
// every method. Also: callers without a valid certificate, cross-agency
// access, the authenticated agency being recorded, and the broker's refusal
// to serve plaintext except explicitly, on loopback.
#include "security/call_authorizer.h"

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "server/broker.h"
#include "storage/audit_trail.h"
#include "support/broker_process.h"
#include "support/dev_pki.h"
#include "support/sample_referral.h"

namespace referral {
namespace {

using ::referral::testing::BrokerClients;
using ::referral::testing::SampleReferral;
using ::referral::testing::TempDir;
using ::referral::testing::TlsChannel;
using ::testing::HasSubstr;

class CallAuthorizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new TempDir();
    pki_status_ = new absl::Status(testing::MakeDevPki(pki_->Sub("pki")));
  }
  static void TearDownTestSuite() {
    delete pki_status_;
    delete pki_;
  }

  void SetUp() override {
    ASSERT_TRUE(pki_status_->ok()) << *pki_status_;
    StartBroker();
  }

  void StartBroker() {
    server::BrokerOptions options;
    options.settings.set_listen("127.0.0.1:0");
    options.settings.set_data_dir(dir_.Sub("data"));
    options.settings.set_tls_certificate_file(Pki("server.pem"));
    options.settings.set_tls_private_key_file(Pki("server.key"));
    options.settings.set_tls_client_ca_file(Pki("ca.pem"));
    options.settings.set_principals_file(
        absl::StrCat(REFERRAL_SOURCE_DIR, "/server/config/principals.txtpb"));
    options.settings.set_shutdown_grace_seconds(1);
    auto broker = server::Broker::Start(options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
  }

  static std::string Pki(const std::string& name) {
    return pki_->Sub("pki/" + name);
  }

  std::unique_ptr<BrokerClients> As(const std::string& client) {
    auto channel = TlsChannel(absl::StrCat("127.0.0.1:", broker_->port()),
                              pki_->Sub("pki"), client);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return std::make_unique<BrokerClients>(*channel);
  }

  static grpc::Status SubmitAs(BrokerClients& clients, const std::string& key,
                               v1::SubmitReferralResponse* response,
                               const std::string& claimed_agency = "") {
    grpc::ClientContext context;
    v1::SubmitReferralRequest request;
    *request.mutable_referral() =
        SampleReferral({.agency_id = claimed_agency.empty() ? "cambs-police"
                                                            : claimed_agency});
    request.set_idempotency_key(key);
    return clients.intake->SubmitReferral(&context, request, response);
  }

  static grpc::Status StatusAs(BrokerClients& clients, const std::string& id) {
    grpc::ClientContext context;
    v1::GetReferralStatusRequest request;
    request.set_referral_id(id);
    v1::GetReferralStatusResponse response;
    return clients.intake->GetReferralStatus(&context, request, &response);
  }

  static TempDir* pki_;
  static absl::Status* pki_status_;
  TempDir dir_;
  std::unique_ptr<server::Broker> broker_;
};

TempDir* CallAuthorizerTest::pki_ = nullptr;
absl::Status* CallAuthorizerTest::pki_status_ = nullptr;

// Calls one method with a minimal request; what matters is whether the
// answer is PERMISSION_DENIED.
grpc::StatusCode Call(BrokerClients& c, const std::string& method) {
  grpc::ClientContext ctx;
  if (method == "SubmitReferral") {
    v1::SubmitReferralRequest request;
    *request.mutable_referral() = SampleReferral();
    request.set_idempotency_key("matrix-" + std::to_string(rand()));
    v1::SubmitReferralResponse response;
    return c.intake->SubmitReferral(&ctx, request, &response).error_code();
  }
  if (method == "GetReferralStatus") {
    v1::GetReferralStatusRequest request;
    request.set_referral_id("REF-2026-000001");
    v1::GetReferralStatusResponse response;
    return c.intake->GetReferralStatus(&ctx, request, &response).error_code();
  }
  if (method == "ListOutcomes") {
    v1::ListOutcomesResponse response;
    return c.intake->ListOutcomes(&ctx, {}, &response).error_code();
  }
  if (method == "AcknowledgeOutcome") {
    v1::AcknowledgeOutcomeRequest request;
    request.set_referral_id("REF-2026-000001");
    v1::AcknowledgeOutcomeResponse response;
    return c.intake->AcknowledgeOutcome(&ctx, request, &response).error_code();
  }
  if (method == "ListQueue") {
    v1::ListQueueRequest request;
    request.set_queue("ifd-triage");
    v1::ListQueueResponse response;
    return c.triage->ListQueue(&ctx, request, &response).error_code();
  }
  if (method == "ClaimReferrals") {
    v1::ClaimReferralsRequest request;
    request.set_queue("ifd-triage");
    request.set_max(1);
    request.set_worker("w");
    v1::ClaimReferralsResponse response;
    return c.triage->ClaimReferrals(&ctx, request, &response).error_code();
  }
  if (method == "ExtendClaim") {
    v1::ExtendClaimRequest request;
    request.set_referral_id("REF-2026-000001");
    request.set_lease_token("t");
    request.set_lease_seconds(60);
    v1::ExtendClaimResponse response;
    return c.triage->ExtendClaim(&ctx, request, &response).error_code();
  }
  if (method == "ReleaseReferral") {
    v1::ReleaseReferralRequest request;
    request.set_referral_id("REF-2026-000001");
    request.set_lease_token("t");
    request.set_reason("r");
    v1::ReleaseReferralResponse response;
    return c.triage->ReleaseReferral(&ctx, request, &response).error_code();
  }
  if (method == "RecordDecision") {
    v1::RecordDecisionRequest request;
    request.set_referral_id("REF-2026-000001");
    request.set_lease_token("t");
    request.set_decision(v1::DECISION_EARLY_HELP);
    request.set_rationale("r");
    v1::RecordDecisionResponse response;
    return c.triage->RecordDecision(&ctx, request, &response).error_code();
  }
  if (method == "ListNotices") {
    v1::ListNoticesRequest request;
    request.set_queue("edt-out-of-hours");
    v1::ListNoticesResponse response;
    return c.triage->ListNotices(&ctx, request, &response).error_code();
  }
  if (method == "WatchQueue") {
    v1::WatchQueueRequest request;
    request.set_queue("ifd-triage");
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(500));
    auto reader = c.triage->WatchQueue(&ctx, request);
    v1::QueueEvent event;
    while (reader->Read(&event)) {
    }
    return reader->Finish().error_code();
  }
  if (method == "GetQueueStats") {
    v1::GetQueueStatsResponse response;
    return c.operations->GetQueueStats(&ctx, {}, &response).error_code();
  }
  if (method == "ListDeadLetters") {
    v1::ListDeadLettersRequest request;
    request.set_queue("ifd-triage");
    v1::ListDeadLettersResponse response;
    return c.operations->ListDeadLetters(&ctx, request, &response).error_code();
  }
  if (method == "RequeueDeadLetter") {
    v1::RequeueDeadLetterRequest request;
    request.set_referral_id("REF-2026-000001");
    v1::RequeueDeadLetterResponse response;
    return c.operations->RequeueDeadLetter(&ctx, request, &response)
        .error_code();
  }
  if (method == "ExportAudit") {
    v1::ExportAuditResponse response;
    return c.operations->ExportAudit(&ctx, {}, &response).error_code();
  }
  if (method == "ReloadConfig") {
    v1::ReloadConfigResponse response;
    return c.operations->ReloadConfig(&ctx, {}, &response).error_code();
  }
  if (method == "VerifyAudit") {
    v1::VerifyAuditResponse response;
    return c.operations->VerifyAudit(&ctx, {}, &response).error_code();
  }
  if (method == "CreateBackup") {
    v1::CreateBackupResponse response;
    return c.operations->CreateBackup(&ctx, {}, &response).error_code();
  }
  if (method == "ListBackups") {
    v1::ListBackupsResponse response;
    return c.operations->ListBackups(&ctx, {}, &response).error_code();
  }
  if (method == "VerifyBackup") {
    v1::VerifyBackupRequest request;
    request.set_backup_id(1);
    v1::VerifyBackupResponse response;
    return c.operations->VerifyBackup(&ctx, request, &response).error_code();
  }
  ADD_FAILURE() << "unknown method " << method;
  return grpc::StatusCode::UNKNOWN;
}

TEST_F(CallAuthorizerTest, EachRoleMayCallOnlyItsMethods) {
  // Y: allowed (any answer but PERMISSION_DENIED); n: PERMISSION_DENIED.
  // Clients: cambs-police (agency), triage-cli (triage), ops, admin.
  const std::map<std::string, std::string> allowed = {
      //                      agency triage ops admin
      {"SubmitReferral", "Ynnn"},  {"GetReferralStatus", "Ynnn"},
      {"ListOutcomes", "Ynnn"},    {"AcknowledgeOutcome", "Ynnn"},
      {"ListQueue", "nYnn"},       {"ClaimReferrals", "nYnn"},
      {"ExtendClaim", "nYnn"},     {"ReleaseReferral", "nYnn"},
      {"RecordDecision", "nYnn"},  {"ListNotices", "nYnn"},
      {"WatchQueue", "nYnn"},      {"GetQueueStats", "nnYY"},
      {"ListDeadLetters", "nnYY"}, {"RequeueDeadLetter", "nnnY"},
      {"CreateBackup", "nnnY"},    {"ListBackups", "nnnY"},
      {"VerifyBackup", "nnnY"},
  };
  const std::vector<std::string> clients = {"cambs-police", "triage-cli", "ops",
                                            "admin"};
  for (size_t i = 0; i < clients.size(); ++i) {
    std::unique_ptr<BrokerClients> as = As(clients[i]);
    for (const auto& [method, row] : allowed) {
      const grpc::StatusCode code = Call(*as, method);
      EXPECT_NE(code, grpc::StatusCode::UNAUTHENTICATED)
          << clients[i] << " " << method;
      if (row[i] == 'Y') {
        EXPECT_NE(code, grpc::StatusCode::PERMISSION_DENIED)
            << clients[i] << " should be allowed " << method;
      } else {
        EXPECT_EQ(code, grpc::StatusCode::PERMISSION_DENIED)
            << clients[i] << " should be denied " << method;
      }
    }
  }
}

TEST_F(CallAuthorizerTest,
       WithoutAClientCertificateEveryCallIsUnauthenticated) {
  std::unique_ptr<BrokerClients> anonymous = As("");
  for (const std::string method :
       {"SubmitReferral", "ListQueue", "GetQueueStats", "RequeueDeadLetter"}) {
    EXPECT_EQ(Call(*anonymous, method), grpc::StatusCode::UNAUTHENTICATED)
        << method;
  }
}

TEST_F(CallAuthorizerTest, CertificatesFromAnotherCaOrExpiredNeverConnect) {
  for (const std::string client : {"intruder", "expired"}) {
    std::unique_ptr<BrokerClients> as = As(client);
    EXPECT_EQ(Call(*as, "GetQueueStats"), grpc::StatusCode::UNAVAILABLE)
        << client;
  }
}

TEST_F(CallAuthorizerTest, AnAgencySeesOnlyItsOwnReferrals) {
  std::unique_ptr<BrokerClients> police = As("cambs-police");
  std::unique_ptr<BrokerClients> hospital = As("nwangliaft-hospital");
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(SubmitAs(*police, "own-1", &submitted).ok());
  EXPECT_TRUE(StatusAs(*police, submitted.referral_id()).ok());

  // Another agency gets exactly what an unknown reference gets.
  const grpc::Status other = StatusAs(*hospital, submitted.referral_id());
  const grpc::Status unknown = StatusAs(*hospital, "REF-2026-999999");
  EXPECT_EQ(other.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(other.error_message(), unknown.error_message());

  grpc::ClientContext ack_context;
  v1::AcknowledgeOutcomeRequest ack;
  ack.set_referral_id(submitted.referral_id());
  v1::AcknowledgeOutcomeResponse ack_response;
  EXPECT_EQ(
      hospital->intake->AcknowledgeOutcome(&ack_context, ack, &ack_response)
          .error_code(),
      grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext list_context;
  v1::ListOutcomesRequest list;
  list.set_agency("cambs-police");
  v1::ListOutcomesResponse outcomes;
  EXPECT_EQ(hospital->intake->ListOutcomes(&list_context, list, &outcomes)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(CallAuthorizerTest, TheAuthenticatedAgencyIsRecordedNotTheClaimedOne) {
  std::unique_ptr<BrokerClients> police = As("cambs-police");
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(
      SubmitAs(*police, "claimed-1", &submitted, "nwangliaft-hospital").ok());
  // The hospital cannot see it; the police can, recorded under their name.
  std::unique_ptr<BrokerClients> hospital = As("nwangliaft-hospital");
  EXPECT_EQ(StatusAs(*hospital, submitted.referral_id()).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext context;
  v1::GetReferralStatusRequest request;
  request.set_referral_id(submitted.referral_id());
  v1::GetReferralStatusResponse status;
  ASSERT_TRUE(
      police->intake->GetReferralStatus(&context, request, &status).ok());
  EXPECT_EQ(status.history(0).actor(), "agency:cambs-police");
}

TEST_F(CallAuthorizerTest, TheAuditTrailRecordsWhoDidWhatIncludingReads) {
  std::unique_ptr<BrokerClients> police = As("cambs-police");
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(SubmitAs(*police, "audit-1", &submitted).ok());
  ASSERT_TRUE(StatusAs(*police, submitted.referral_id()).ok());
  // Another agency's look is recorded too, as NOT_FOUND.
  std::unique_ptr<BrokerClients> hospital = As("nwangliaft-hospital");
  ASSERT_EQ(StatusAs(*hospital, submitted.referral_id()).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // The console claims for a named member of staff.
  std::unique_ptr<BrokerClients> triage = As("triage-cli");
  grpc::ClientContext claim_context;
  claim_context.AddMetadata(server::kOnBehalfOfHeader, "Sam Worker");
  v1::ClaimReferralsRequest claim;
  claim.set_queue(submitted.queue());
  claim.set_max(1);
  claim.set_worker("sam");
  v1::ClaimReferralsResponse claimed;
  ASSERT_TRUE(
      triage->triage->ClaimReferrals(&claim_context, claim, &claimed).ok());
  ASSERT_EQ(claimed.claims_size(), 1);

  std::unique_ptr<BrokerClients> admin = As("admin");
  grpc::ClientContext export_context;
  v1::ExportAuditResponse trail;
  ASSERT_TRUE(admin->operations->ExportAudit(&export_context, {}, &trail).ok());
  std::vector<std::string> lines;
  for (const v1::AuditEntry& entry : trail.records()) {
    lines.push_back(absl::StrCat(entry.principal(), "|", entry.on_behalf_of(),
                                 "|", entry.action(), "|", entry.referral_id(),
                                 "|", entry.result()));
    EXPECT_EQ(entry.hash().size(), 64u);
  }
  const std::string id = submitted.referral_id();
  EXPECT_THAT(lines,
              ::testing::IsSupersetOf({
                  "cambs-police||submit|" + id + "|OK",
                  "cambs-police||status_read|" + id + "|OK",
                  "nwangliaft-hospital||status_read|" + id + "|NOT_FOUND",
                  "triage-cli|Sam Worker|claim|" + id + "|OK",
              }));
  // Each record is chained to the one before.
  for (int i = 1; i < trail.records_size(); ++i) {
    EXPECT_EQ(trail.records(i).previous_hash(), trail.records(i - 1).hash());
  }

  grpc::ClientContext verify_context;
  v1::VerifyAuditResponse verified;
  ASSERT_TRUE(
      admin->operations->VerifyAudit(&verify_context, {}, &verified).ok());
  EXPECT_TRUE(verified.intact()) << verified.problem();
  EXPECT_GE(verified.records_checked(), 4u);
}

// Opens the stopped broker's store directly, as someone with access to the
// disk might, and hands `tamper` the audit column family.
void TamperWithAudit(
    const std::string& path,
    const std::function<void(rocksdb::DB*, rocksdb::ColumnFamilyHandle*)>&
        tamper) {
  std::vector<std::string> names;
  ASSERT_TRUE(
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) {
    families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(
      rocksdb::DB::Open(rocksdb::DBOptions(), path, families, &handles, &raw)
          .ok());
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "audit") tamper(raw, handles[i]);
  }
  for (auto* handle : handles) raw->DestroyColumnFamilyHandle(handle);
  delete raw;
}

std::string AuditKey(uint8_t seq) {
  std::string key(8, '\0');
  key[7] = static_cast<char>(seq);
  return key;
}

class AuditTamperTest : public CallAuthorizerTest {
 protected:
  // Two submissions (audit records 1 and 2), then the broker is stopped,
  // `tamper` runs on the raw store, and the broker restarts; returns what
  // the admin's VerifyAudit says over TLS.
  v1::VerifyAuditResponse TamperThenVerify(
      const std::function<void(rocksdb::DB*, rocksdb::ColumnFamilyHandle*)>&
          tamper) {
    std::unique_ptr<BrokerClients> police = As("cambs-police");
    v1::SubmitReferralResponse submitted;
    EXPECT_TRUE(SubmitAs(*police, "tamper-1", &submitted).ok());
    EXPECT_TRUE(SubmitAs(*police, "tamper-2", &submitted).ok());
    police.reset();
    broker_.reset();
    TamperWithAudit(dir_.Sub("data"), tamper);
    StartBroker();
    std::unique_ptr<BrokerClients> admin = As("admin");
    grpc::ClientContext context;
    v1::VerifyAuditResponse verified;
    EXPECT_TRUE(admin->operations->VerifyAudit(&context, {}, &verified).ok());
    return verified;
  }
};

TEST_F(AuditTamperTest, AnEditedRecordIsFound) {
  v1::VerifyAuditResponse verified = TamperThenVerify(
      [](rocksdb::DB* raw, rocksdb::ColumnFamilyHandle* audit) {
        std::string value;
        ASSERT_TRUE(
            raw->Get(rocksdb::ReadOptions(), audit, AuditKey(1), &value).ok());
        storage::AuditRecord record;
        ASSERT_TRUE(record.ParseFromString(value));
        EXPECT_EQ(record.principal(), "cambs-police");
        record.set_principal("someone-else");
        rocksdb::WriteOptions sync;
        sync.sync = true;
        ASSERT_TRUE(
            raw->Put(sync, audit, AuditKey(1), record.SerializeAsString())
                .ok());
      });
  EXPECT_FALSE(verified.intact());
  EXPECT_EQ(verified.first_bad_seq(), 1u);
  EXPECT_FALSE(verified.problem().empty());
}

TEST_F(AuditTamperTest, ADeletedRecordIsFound) {
  v1::VerifyAuditResponse verified = TamperThenVerify(
      [](rocksdb::DB* raw, rocksdb::ColumnFamilyHandle* audit) {
        rocksdb::WriteOptions sync;
        sync.sync = true;
        ASSERT_TRUE(raw->Delete(sync, audit, AuditKey(1)).ok());
      });
  EXPECT_FALSE(verified.intact());
  EXPECT_EQ(verified.first_bad_seq(), 1u);
}

TEST_F(AuditTamperTest, AnUntouchedTrailIsIntact) {
  v1::VerifyAuditResponse verified =
      TamperThenVerify([](rocksdb::DB*, rocksdb::ColumnFamilyHandle*) {});
  EXPECT_TRUE(verified.intact()) << verified.problem();
  EXPECT_EQ(verified.records_checked(), 2u);
}

TEST(RateLimitTest, ARunawayClientIsToldWhenToRetry) {
  TempDir dir;
  server::BrokerOptions options;
  options.settings.set_listen("127.0.0.1:0");
  options.settings.set_data_dir(dir.Sub("data"));
  options.settings.set_insecure_development(true);
  options.settings.set_rate_limit_per_second(0.001);
  options.settings.set_rate_limit_burst(3);
  auto broker = server::Broker::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  BrokerClients clients(absl::StrCat("127.0.0.1:", (*broker)->port()));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Call(clients, "GetQueueStats"), grpc::StatusCode::OK) << i;
  }
  grpc::ClientContext context;
  v1::GetQueueStatsResponse response;
  const grpc::Status limited =
      clients.operations->GetQueueStats(&context, {}, &response);
  EXPECT_EQ(limited.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(limited.error_message(), HasSubstr("retry after"));
}

TEST(BrokerStartTest, PlaintextNeedsTheDevelopmentFlagAndLoopback) {
  TempDir dir;
  server::BrokerOptions options;
  options.settings.set_listen("127.0.0.1:0");
  options.settings.set_data_dir(dir.Sub("data"));
  auto refused = server::Broker::Start(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("refusing to serve without TLS"));

  options.settings.set_insecure_development(true);
  options.settings.set_listen("0.0.0.0:0");
  auto exposed = server::Broker::Start(options);
  ASSERT_FALSE(exposed.ok());
  EXPECT_THAT(std::string(exposed.status().message()), HasSubstr("loopback"));

  options.settings.set_listen("127.0.0.1:0");
  EXPECT_TRUE(server::Broker::Start(options).ok());
}

}  // namespace
}  // namespace referral
