// Specification of how a caller is identified: which certificate names count
// and in what order, how they map to a principal (URI SANs over the CN, no
// ambiguity), and what a caller without a usable certificate is told. The
// first part uses a hand-built AuthContext; the second checks the same
// against real mutual-TLS handshakes with the certificates from
// deploy/make-dev-certs.sh, so the gRPC property names are tested, not
// assumed.
#include "security/peer_identity.h"

#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "referral/v1/broker.grpc.pb.h"
#include "security/principals.h"
#include "support/broker_process.h"

namespace referral::server {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kShippedPrincipals[] =
    REFERRAL_SOURCE_DIR "/server/config/principals.txtpb";

std::unique_ptr<PrincipalDirectory> Directory(std::string_view text) {
  absl::StatusOr<std::unique_ptr<PrincipalDirectory>> directory =
      PrincipalDirectory::Parse(text, "test");
  EXPECT_TRUE(directory.ok()) << directory.status();
  return directory.ok() ? *std::move(directory) : nullptr;
}

// An AuthContext filled by hand, as gRPC's TLS transport fills it.
class FakeAuthContext : public grpc::AuthContext {
 public:
  // A context as for a TLS peer with a client certificate.
  static FakeAuthContext Tls() {
    FakeAuthContext context;
    context.AddProperty(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME,
                        GRPC_SSL_TRANSPORT_SECURITY_TYPE);
    return context;
  }

  FakeAuthContext& San(const std::string& value) {
    AddProperty(GRPC_X509_SAN_PROPERTY_NAME, value);
    identity_property_ = GRPC_X509_SAN_PROPERTY_NAME;
    return *this;
  }
  FakeAuthContext& Cn(const std::string& value) {
    AddProperty(GRPC_X509_CN_PROPERTY_NAME, value);
    if (identity_property_.empty()) {
      identity_property_ = GRPC_X509_CN_PROPERTY_NAME;
    }
    return *this;
  }

  bool IsPeerAuthenticated() const override {
    return !identity_property_.empty();
  }
  std::vector<grpc::string_ref> GetPeerIdentity() const override {
    return FindPropertyValues(identity_property_);
  }
  std::string GetPeerIdentityPropertyName() const override {
    return identity_property_;
  }
  std::vector<grpc::string_ref> FindPropertyValues(
      const std::string& name) const override {
    std::vector<grpc::string_ref> values;
    for (const auto& [key, value] : properties_) {
      if (key == name) values.emplace_back(value);
    }
    return values;
  }
  grpc::AuthPropertyIterator begin() const override { return NoProperties(); }
  grpc::AuthPropertyIterator end() const override { return NoProperties(); }
  void AddProperty(const std::string& key,
                   const grpc::string_ref& value) override {
    properties_.emplace_back(key, std::string(value.data(), value.size()));
  }
  bool SetPeerIdentityPropertyName(const std::string& name) override {
    identity_property_ = name;
    return true;
  }

 private:
  // The code under test never iterates; an empty range is enough.
  struct EmptyIterator : grpc::AuthPropertyIterator {};
  static grpc::AuthPropertyIterator NoProperties() { return EmptyIterator(); }

  // A deque keeps values in place, so string_refs to them stay valid.
  std::deque<std::pair<std::string, std::string>> properties_;
  std::string identity_property_;
};

// --- PeerIdentities ----------------------------------------------------------

TEST(PeerIdentitiesTest, UriSansFirstThenCommonName) {
  FakeAuthContext context = FakeAuthContext::Tls();
  context.Cn("cambs-police")
      .San("broker-client.cambs.police.example")  // DNS SAN: not an identity
      .San("spiffe://referral-broker/cambs-police")
      .San("192.0.2.7")                       // IP SAN
      .San("duty.desk@cambs.police.example")  // e-mail SAN
      .San("https://idp.cambs.police.example/device/42");
  EXPECT_THAT(PeerIdentities(context),
              ElementsAre("spiffe://referral-broker/cambs-police",
                          "https://idp.cambs.police.example/device/42",
                          "cambs-police"));
}

TEST(PeerIdentitiesTest, CommonNameAloneWhenNoUriSan) {
  FakeAuthContext context = FakeAuthContext::Tls();
  context.Cn("legacy-tool").San("legacy.example");
  EXPECT_THAT(PeerIdentities(context), ElementsAre("legacy-tool"));
}

TEST(PeerIdentitiesTest, OnlyThingsShapedLikeUrisCountAsUris) {
  FakeAuthContext context = FakeAuthContext::Tls();
  context.Cn("x")
      .San("://no-scheme")
      .San("1http://digit-first")
      .San("\"odd://local\"@example.org")
      .San("2001:db8::1");
  EXPECT_THAT(PeerIdentities(context), ElementsAre("x"));
}

TEST(PeerIdentitiesTest, NoDuplicates) {
  FakeAuthContext context = FakeAuthContext::Tls();
  context.San("spiffe://referral-broker/ops")
      .San("spiffe://referral-broker/ops")
      .Cn("ops");
  context.AddProperty(GRPC_PEER_SPIFFE_ID_PROPERTY_NAME,
                      "spiffe://referral-broker/ops");
  EXPECT_THAT(PeerIdentities(context),
              ElementsAre("spiffe://referral-broker/ops", "ops"));
}

TEST(PeerIdentitiesTest, EmptyWithoutAnAuthenticatedTlsPeer) {
  // Not authenticated: no peer identity property was set.
  FakeAuthContext anonymous = FakeAuthContext::Tls();
  anonymous.AddProperty(GRPC_X509_CN_PROPERTY_NAME, "ops");
  EXPECT_THAT(PeerIdentities(anonymous), IsEmpty());

  // Authenticated, but not by TLS (e.g. a custom metadata processor): a
  // certificate property there was not put there by the handshake.
  FakeAuthContext other;
  other.AddProperty(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME, "insecure");
  other.San("spiffe://referral-broker/admin");
  EXPECT_THAT(PeerIdentities(other), IsEmpty());

  // The experimental TLS credentials report "tls"; they count.
  FakeAuthContext tls;
  tls.AddProperty(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME,
                  GRPC_TLS_TRANSPORT_SECURITY_TYPE);
  tls.San("spiffe://referral-broker/admin");
  EXPECT_THAT(PeerIdentities(tls),
              ElementsAre("spiffe://referral-broker/admin"));
}

// --- AuthenticatePeer --------------------------------------------------------

constexpr char kPrincipals[] = R"pb(
  principals {
    identity: "spiffe://referral-broker/cambs-police"
    name: "cambs-police"
    roles: ROLE_AGENCY
    agency_id: "cambs-police"
  }
  principals {
    identity: "spiffe://referral-broker/admin"
    name: "admin"
    roles: ROLE_ADMIN
  }
  principals { identity: "admin" name: "admin-by-cn" roles: ROLE_ADMIN }
  principals { identity: "legacy-tool" name: "legacy-tool" roles: ROLE_OPS }
)pb";

TEST(AuthenticatePeerTest, MapsTheUriSanToItsPrincipal) {
  std::unique_ptr<PrincipalDirectory> directory = Directory(kPrincipals);
  ASSERT_NE(directory, nullptr);
  FakeAuthContext context = FakeAuthContext::Tls();
  context.Cn("cambs-police").San("spiffe://referral-broker/cambs-police");
  absl::StatusOr<const Principal*> principal =
      AuthenticatePeer(&context, *directory);
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ((*principal)->name, "cambs-police");
  EXPECT_EQ((*principal)->agency_id, "cambs-police");
}

TEST(AuthenticatePeerTest, UsesTheCommonNameOnlyWithoutUriSans) {
  std::unique_ptr<PrincipalDirectory> directory = Directory(kPrincipals);
  ASSERT_NE(directory, nullptr);
  FakeAuthContext context = FakeAuthContext::Tls();
  context.Cn("legacy-tool");
  absl::StatusOr<const Principal*> principal =
      AuthenticatePeer(&context, *directory);
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ((*principal)->name, "legacy-tool");
}

TEST(AuthenticatePeerTest, AnUnregisteredUriDoesNotFallBackToTheCommonName) {
  // A certificate naming an unknown workload must not gain admin through a
  // CN that happens to match another entry.
  std::unique_ptr<PrincipalDirectory> directory = Directory(kPrincipals);
  ASSERT_NE(directory, nullptr);
  FakeAuthContext context = FakeAuthContext::Tls();
  context.Cn("admin").San("spiffe://referral-broker/fenland-gp");
  absl::StatusOr<const Principal*> principal =
      AuthenticatePeer(&context, *directory);
  EXPECT_EQ(principal.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(std::string(principal.status().message()),
            "client certificate is not registered with this broker");
}

TEST(AuthenticatePeerTest, AmbiguousCertificateIsRefused) {
  std::unique_ptr<PrincipalDirectory> directory = Directory(kPrincipals);
  ASSERT_NE(directory, nullptr);
  FakeAuthContext context = FakeAuthContext::Tls();
  context.San("spiffe://referral-broker/cambs-police")
      .San("spiffe://referral-broker/admin");
  absl::StatusOr<const Principal*> principal =
      AuthenticatePeer(&context, *directory);
  EXPECT_EQ(principal.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(std::string(principal.status().message()),
            "client certificate matches more than one principal");
}

TEST(AuthenticatePeerTest, NoCertificateIsUnauthenticated) {
  std::unique_ptr<PrincipalDirectory> directory = Directory(kPrincipals);
  ASSERT_NE(directory, nullptr);
  // No context at all, and a TLS context without a client certificate.
  FakeAuthContext tls_without_certificate = FakeAuthContext::Tls();
  for (const grpc::AuthContext* context : std::vector<const grpc::AuthContext*>{
           nullptr, &tls_without_certificate}) {
    absl::StatusOr<const Principal*> principal =
        AuthenticatePeer(context, *directory);
    EXPECT_EQ(principal.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(std::string(principal.status().message()),
              "no verified client certificate");
  }
}

TEST(AuthenticatePeerTest, UnregisteredCertificateIsUnauthenticated) {
  std::unique_ptr<PrincipalDirectory> directory = Directory(kPrincipals);
  ASSERT_NE(directory, nullptr);
  FakeAuthContext context = FakeAuthContext::Tls();
  context.Cn("someone-else");
  absl::StatusOr<const Principal*> principal =
      AuthenticatePeer(&context, *directory);
  EXPECT_EQ(principal.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(std::string(principal.status().message()),
            "client certificate is not registered with this broker");
}

// --- Over real mutual TLS ----------------------------------------------------

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// Records what the broker-side code sees for each call.
class RecordingOperations final : public ::referral::v1::Operations::Service {
 public:
  explicit RecordingOperations(const PrincipalDirectory* directory)
      : directory_(directory) {}

  grpc::Status GetQueueStats(
      grpc::ServerContext* context,
      const ::referral::v1::GetQueueStatsRequest* /*request*/,
      ::referral::v1::GetQueueStatsResponse* /*response*/) override {
    const std::shared_ptr<const grpc::AuthContext> auth =
        context->auth_context();
    absl::MutexLock lock(&mu_);
    identities_ = PeerIdentities(*auth);
    absl::StatusOr<const Principal*> principal =
        AuthenticatePeer(auth.get(), *directory_);
    status_ = principal.status();
    principal_name_ = principal.ok() ? (*principal)->name : "";
    ++calls_;
    return grpc::Status::OK;
  }

  struct Seen {
    std::vector<std::string> identities;
    absl::Status status;
    std::string principal_name;
    int calls = 0;
  };
  Seen seen() {
    absl::MutexLock lock(&mu_);
    return {identities_, status_, principal_name_, calls_};
  }

 private:
  const PrincipalDirectory* directory_;
  absl::Mutex mu_;
  std::vector<std::string> identities_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::string principal_name_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

class MutualTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new referral::testing::TempDir();
    const std::string command = std::string("bash '") + REFERRAL_SOURCE_DIR +
                                "/deploy/make-dev-certs.sh' '" +
                                certs_->path() + "' >/dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    // A valid certificate of the real CA that nobody registered.
    const std::string issue = std::string("bash '") + REFERRAL_SOURCE_DIR +
                              "/deploy/issue-agency-cert.sh' '" +
                              certs_->path() + "' fenland-gp '" +
                              certs_->path() + "' >/dev/null";
    ASSERT_EQ(std::system(issue.c_str()), 0) << issue;
  }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(certs_, nullptr);
    absl::StatusOr<std::unique_ptr<PrincipalDirectory>> directory =
        PrincipalDirectory::LoadFile(kShippedPrincipals);
    ASSERT_TRUE(directory.ok()) << directory.status();
    directory_ = *std::move(directory);
    service_ = std::make_unique<RecordingOperations>(directory_.get());

    // What the broker must configure: require a client certificate and
    // verify it against the broker's CA.
    grpc::SslServerCredentialsOptions options(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = ReadFile(Cert("ca.pem"));
    options.pem_key_cert_pairs.push_back(
        {ReadFile(Cert("server.key")), ReadFile(Cert("server.pem"))});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(options),
                             &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  static std::string Cert(const std::string& name) { return certs_->Sub(name); }

  // Calls GetQueueStats presenting `client` (a certificate name in the
  // certs directory; empty for none).
  grpc::Status CallAs(const std::string& client) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ReadFile(Cert("ca.pem"));
    if (!client.empty()) {
      options.pem_private_key = ReadFile(Cert(client + ".key"));
      options.pem_cert_chain = ReadFile(Cert(client + ".pem"));
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    auto channel =
        grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_),
                                  grpc::SslCredentials(options), args);
    auto stub = ::referral::v1::Operations::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    ::referral::v1::GetQueueStatsResponse response;
    return stub->GetQueueStats(&context, {}, &response);
  }

  static referral::testing::TempDir* certs_;
  std::unique_ptr<PrincipalDirectory> directory_;
  std::unique_ptr<RecordingOperations> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

referral::testing::TempDir* MutualTlsTest::certs_ = nullptr;

TEST_F(MutualTlsTest, AgencyCertificateIdentifiesTheAgency) {
  const grpc::Status status = CallAs("cambs-police");
  ASSERT_TRUE(status.ok()) << status.error_message();
  const RecordingOperations::Seen seen = service_->seen();
  EXPECT_THAT(
      seen.identities,
      ElementsAre("spiffe://referral-broker/cambs-police", "cambs-police"));
  EXPECT_TRUE(seen.status.ok()) << seen.status;
  EXPECT_EQ(seen.principal_name, "cambs-police");
}

TEST_F(MutualTlsTest, EachDevelopmentClientMapsToItsPrincipal) {
  for (const char* name : {"peterborough-school-1", "nwangliaft-hospital",
                           "triage-console", "triage-cli", "ops", "admin"}) {
    const grpc::Status status = CallAs(name);
    ASSERT_TRUE(status.ok()) << name << ": " << status.error_message();
    const RecordingOperations::Seen seen = service_->seen();
    EXPECT_TRUE(seen.status.ok()) << name << ": " << seen.status;
    EXPECT_EQ(seen.principal_name, name);
  }
}

TEST_F(MutualTlsTest, ValidButUnregisteredCertificateIsUnauthenticated) {
  const grpc::Status status = CallAs("fenland-gp");
  ASSERT_TRUE(status.ok()) << "the handshake itself succeeds";
  const RecordingOperations::Seen seen = service_->seen();
  EXPECT_THAT(seen.identities,
              ElementsAre("spiffe://referral-broker/fenland-gp", "fenland-gp"));
  EXPECT_EQ(seen.status.code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(MutualTlsTest, HandshakeRefusesCertificatesTheCaDidNotSign) {
  EXPECT_EQ(CallAs("intruder").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(service_->seen().calls, 0);
}

TEST_F(MutualTlsTest, HandshakeRefusesExpiredCertificates) {
  EXPECT_EQ(CallAs("expired").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(service_->seen().calls, 0);
}

TEST_F(MutualTlsTest, HandshakeRefusesCallersWithoutACertificate) {
  EXPECT_EQ(CallAs("").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(service_->seen().calls, 0);
}

TEST(InsecureTransportTest, PlaintextCallerHasNoIdentity) {
  absl::StatusOr<std::unique_ptr<PrincipalDirectory>> directory =
      PrincipalDirectory::LoadFile(kShippedPrincipals);
  ASSERT_TRUE(directory.ok()) << directory.status();
  RecordingOperations service(directory->get());
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  auto stub = ::referral::v1::Operations::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  ::referral::v1::GetQueueStatsResponse response;
  ASSERT_TRUE(stub->GetQueueStats(&context, {}, &response).ok());
  const RecordingOperations::Seen seen = service.seen();
  EXPECT_THAT(seen.identities, IsEmpty());
  EXPECT_EQ(seen.status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(std::string(seen.status.message()),
            "no verified client certificate");
  server->Shutdown();
}

}  // namespace
}  // namespace referral::server
