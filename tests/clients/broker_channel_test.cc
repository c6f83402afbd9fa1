// The shared channel and status helpers, and the channel's transport
// security: option validation, and a real mutual-TLS round trip against an
// in-process server using the development PKI from deploy/make-dev-certs.sh.
#include "broker_channel.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "referral/v1/broker.grpc.pb.h"
#include "support/broker_process.h"
#include "support/dev_pki.h"

namespace referral::clients {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST(ConnectToBrokerTest, RejectsAnEmptyAddress) {
  ChannelOptions options;
  options.address = "";
  EXPECT_EQ(ConnectToBroker(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ConnectToBrokerTest, AnUnreachableBrokerIsUnavailableOnFirstCall) {
  ChannelOptions options;
  options.address = "127.0.0.1:1";  // nothing listens on port 1
  options.dedicated_connection = true;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectToBroker(options);
  ASSERT_TRUE(channel.ok());
  auto stub = v1::Operations::NewStub(*channel);
  grpc::ClientContext context;
  SetTimeout(&context, absl::Seconds(10));
  v1::GetQueueStatsResponse response;
  const grpc::Status status =
      stub->GetQueueStats(&context, v1::GetQueueStatsRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(StatusCodeName(status.error_code()), "UNAVAILABLE");
}

TEST(StatusTest, NamesAndConversion) {
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::NOT_FOUND), "NOT_FOUND");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::FAILED_PRECONDITION),
            "FAILED_PRECONDITION");
  EXPECT_EQ(StatusCodeName(static_cast<grpc::StatusCode>(99)), "CODE_99");
  const absl::Status s = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "key reused"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(), "key reused");
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(SetTimeoutTest, InfiniteMeansNoDeadline) {
  grpc::ClientContext context;
  SetTimeout(&context, absl::InfiniteDuration());
  EXPECT_EQ(context.deadline(), std::chrono::system_clock::time_point::max());
  grpc::ClientContext bounded;
  SetTimeout(&bounded, absl::Seconds(5));
  EXPECT_LT(bounded.deadline(),
            std::chrono::system_clock::now() + std::chrono::seconds(6));
}

// --- Transport security and on-behalf-of ------------------------------------

// ChannelOptions whose TLS files live in a scratch directory of the test's
// own; Write() puts a file there.
class TlsOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = temp_.path(); }
  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream(path) << contents;
    return path;
  }
  std::string dir_;
  referral::testing::TempDir temp_;
};

constexpr char kFakeCert[] =
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
constexpr char kFakeKey[] =
    "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n";

TEST_F(TlsOptionsTest, CertificateAndKeyGoTogether) {
  ChannelOptions options;
  options.ca_file = Write("ca.pem", kFakeCert);
  options.cert_file = Write("client.pem", kFakeCert);
  absl::Status status = ConnectToBroker(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--cert"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("--key"));

  options.cert_file = "";
  options.key_file = Write("client.key", kFakeKey);
  status = ConnectToBroker(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), StartsWith("--key"));
}

TEST_F(TlsOptionsTest, TlsFilesNeedTheCa) {
  ChannelOptions options;
  options.cert_file = Write("client.pem", kFakeCert);
  options.key_file = Write("client.key", kFakeKey);
  absl::Status status = ConnectToBroker(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--ca"));

  ChannelOptions named;
  named.tls_server_name = "localhost";
  status = ConnectToBroker(named).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--tls_server_name"));
}

TEST_F(TlsOptionsTest, UnreadableFilesAreNamedByPath) {
  ChannelOptions options;
  options.ca_file = absl::StrCat(dir_, "/missing-ca.pem");
  absl::Status status = ConnectToBroker(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--ca"));
  EXPECT_THAT(std::string(status.message()), HasSubstr(options.ca_file));

  options.ca_file = Write("ca.pem", kFakeCert);
  options.cert_file = absl::StrCat(dir_, "/missing.pem");
  options.key_file = Write("client.key", kFakeKey);
  status = ConnectToBroker(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr(options.cert_file));

  options.cert_file = Write("client.pem", kFakeCert);
  options.key_file = absl::StrCat(dir_, "/missing.key");
  status = ConnectToBroker(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr(options.key_file));
}

TEST_F(TlsOptionsTest, FilesWithoutTheExpectedPemAreRefusedWithoutQuoting) {
  ChannelOptions options;
  options.ca_file = Write("ca.pem", "secret-not-a-certificate\n");
  absl::Status status = ConnectToBroker(options).status();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr(options.ca_file));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("secret")));

  // Certificate and key swapped.
  options.ca_file = Write("ca2.pem", kFakeCert);
  options.cert_file = Write("client.key", kFakeKey);
  options.key_file = Write("client.pem", kFakeCert);
  status = ConnectToBroker(options).status();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), StartsWith("--cert"));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("MIGH")));
}

TEST(OnBehalfOfTest, MustBeAPrintableAsciiHeaderValue) {
  ChannelOptions options;
  for (const std::string& bad :
       {std::string("Jo\nBloggs"), std::string("Zo\xc3\xab"),
        std::string(" Jo"), std::string(257, 'a')}) {
    options.on_behalf_of = bad;
    const absl::Status status = ConnectToBroker(options).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(status.message()), HasSubstr("--on_behalf_of"));
  }
  options.on_behalf_of = "jo.bloggs@cambs.example (duty manager)";
  EXPECT_TRUE(ConnectToBroker(options).ok());
}

TEST(FlagOrEnvironmentTest, AGivenFlagWinsEvenWhenEmpty) {
  ::setenv("REFERRAL_TEST_CA", "/env/ca.pem", 1);
  EXPECT_EQ(FlagOrEnvironment(std::nullopt, "REFERRAL_TEST_CA"), "/env/ca.pem");
  EXPECT_EQ(FlagOrEnvironment("/flag/ca.pem", "REFERRAL_TEST_CA"),
            "/flag/ca.pem");
  EXPECT_EQ(FlagOrEnvironment(std::string(), "REFERRAL_TEST_CA"), "");
  ::unsetenv("REFERRAL_TEST_CA");
  EXPECT_EQ(FlagOrEnvironment(std::nullopt, "REFERRAL_TEST_CA"), "");
  EXPECT_STREQ(kCaEnv, "REFERRAL_CA");
  EXPECT_STREQ(kCertEnv, "REFERRAL_CERT");
  EXPECT_STREQ(kKeyEnv, "REFERRAL_KEY");
}

// A tiny Operations service that records, per call, the caller's
// on-behalf-of metadata and certificate CN.
class RecordingOperations final : public v1::Operations::Service {
 public:
  struct Seen {
    std::vector<std::string> on_behalf_of;
    std::string common_name;
  };

  grpc::Status GetQueueStats(grpc::ServerContext* context,
                             const v1::GetQueueStatsRequest*,
                             v1::GetQueueStatsResponse*) override {
    Seen seen;
    const auto range =
        context->client_metadata().equal_range(kOnBehalfOfMetadataKey);
    for (auto it = range.first; it != range.second; ++it) {
      seen.on_behalf_of.emplace_back(it->second.data(), it->second.size());
    }
    for (const grpc::string_ref& cn :
         context->auth_context()->FindPropertyValues("x509_common_name")) {
      seen.common_name.assign(cn.data(), cn.size());
    }
    absl::MutexLock lock(&mu_);
    seen_.push_back(std::move(seen));
    return grpc::Status::OK;
  }

  std::vector<Seen> seen() const {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Seen> seen_ ABSL_GUARDED_BY(mu_);
};

grpc::Status CallGetQueueStats(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::Operations::NewStub(channel);
  grpc::ClientContext context;
  SetTimeout(&context, absl::Seconds(20));
  v1::GetQueueStatsResponse response;
  return stub->GetQueueStats(&context, v1::GetQueueStatsRequest(), &response);
}

// A broker stand-in that requires and verifies client certificates of the
// development CA, as the real broker does.
class MutualTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Each test process gets its own directory: ctest -j2 runs tests of
    // this suite side by side.
    pki_dir_ = new referral::testing::TempDir();
    pki_ = new std::string(pki_dir_->Sub("pki"));
    pki_status_ = new absl::Status(referral::testing::MakeDevPki(*pki_));
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete pki_status_;
    delete pki_dir_;
  }

  void SetUp() override {
    ASSERT_TRUE(pki_status_->ok()) << *pki_status_;
    absl::StatusOr<std::string> ca =
        referral::testing::ReadWholeFile(Pki("ca.pem"));
    absl::StatusOr<std::string> cert =
        referral::testing::ReadWholeFile(Pki("server.pem"));
    absl::StatusOr<std::string> key =
        referral::testing::ReadWholeFile(Pki("server.key"));
    ASSERT_TRUE(ca.ok() && cert.ok() && key.ok());
    grpc::SslServerCredentialsOptions ssl(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = *ca;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl),
                             &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    address_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override {
    if (server_ != nullptr) {
      server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    }
  }

  static std::string Pki(const std::string& name) {
    return absl::StrCat(*pki_, "/", name);
  }

  // TLS options for `client` (no client certificate when empty).
  ChannelOptions Options(const std::string& client) const {
    ChannelOptions options;
    options.address = address_;
    options.dedicated_connection = true;
    options.ca_file = Pki("ca.pem");
    if (!client.empty()) {
      options.cert_file = Pki(client + ".pem");
      options.key_file = Pki(client + ".key");
    }
    return options;
  }

  static grpc::Status Call(const ChannelOptions& options) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        ConnectToBroker(options);
    if (!channel.ok()) {
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          std::string(channel.status().message()));
    }
    return CallGetQueueStats(*channel);
  }

  static std::string* pki_;
  static absl::Status* pki_status_;
  static referral::testing::TempDir* pki_dir_;
  RecordingOperations service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

std::string* MutualTlsTest::pki_ = nullptr;
absl::Status* MutualTlsTest::pki_status_ = nullptr;
referral::testing::TempDir* MutualTlsTest::pki_dir_ = nullptr;

TEST_F(MutualTlsTest, AClientCertificateOfTheCaIsAccepted) {
  // No override: the server certificate's IP SAN 127.0.0.1 matches.
  const grpc::Status status = Call(Options("triage-cli"));
  ASSERT_TRUE(status.ok()) << StatusCodeName(status.error_code()) << ": "
                           << status.error_message();
  const std::vector<RecordingOperations::Seen> seen = service_.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].common_name, "triage-cli");
  EXPECT_TRUE(seen[0].on_behalf_of.empty());
}

TEST_F(MutualTlsTest, WithoutAClientCertificateTheCallIsUnavailable) {
  const grpc::Status status = Call(Options(""));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_TRUE(service_.seen().empty());
}

TEST_F(MutualTlsTest, ACertificateOfAnotherCaIsUnavailable) {
  const grpc::Status status = Call(Options("intruder"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_TRUE(service_.seen().empty());
}

TEST_F(MutualTlsTest, TheServerNameCanBeOverridden) {
  ChannelOptions options = Options("triage-cli");
  options.tls_server_name = "localhost";
  grpc::Status status = Call(options);
  EXPECT_TRUE(status.ok()) << status.error_message();

  options.tls_server_name = "broker.example";  // not in the certificate
  status = Call(options);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_EQ(service_.seen().size(), 1u);
}

TEST_F(MutualTlsTest, OnBehalfOfReachesTheServerOnEveryCall) {
  ChannelOptions options = Options("triage-cli");
  options.on_behalf_of = "jo.bloggs";
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectToBroker(options);
  ASSERT_TRUE(channel.ok()) << channel.status();
  for (int i = 0; i < 2; ++i) {
    const grpc::Status status = CallGetQueueStats(*channel);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  const std::vector<RecordingOperations::Seen> seen = service_.seen();
  ASSERT_EQ(seen.size(), 2u);
  for (const RecordingOperations::Seen& call : seen) {
    EXPECT_THAT(call.on_behalf_of, ElementsAre("jo.bloggs"));
    EXPECT_EQ(call.common_name, "triage-cli");
  }
}

TEST(OnBehalfOfTest, IsSentOnAPlaintextChannelToo) {
  RecordingOperations service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ChannelOptions options;
  options.address = absl::StrCat("127.0.0.1:", port);
  options.dedicated_connection = true;
  options.on_behalf_of = "a.n.other";
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectToBroker(options);
  ASSERT_TRUE(channel.ok());
  const grpc::Status status = CallGetQueueStats(*channel);
  EXPECT_TRUE(status.ok()) << status.error_message();
  const std::vector<RecordingOperations::Seen> seen = service.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_THAT(seen[0].on_behalf_of, ElementsAre("a.n.other"));
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
}

}  // namespace
}  // namespace referral::clients
