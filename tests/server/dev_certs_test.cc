// Specification of the deploy scripts for mutual TLS and encryption at rest:
// deploy/make-dev-certs.sh builds a development PKI whose client
// certificates verify against the CA (and whose test-only intruder and
// expired certificates do not), deploy/issue-agency-cert.sh adds an agency
// with the same profile, and deploy/make-encryption-key.sh writes a private
// 256-bit key that it never overwrites. Everything is generated at test
// time; no key is ever committed.
#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/broker_process.h"

namespace referral {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

const std::string kDeploy = std::string(REFERRAL_SOURCE_DIR) + "/deploy/";

std::string Quote(const std::string& s) { return "'" + s + "'"; }

struct Result {
  int exit_code;
  std::string output;  // stdout and stderr
};

Result Shell(const std::string& command) {
  Result result{-1, ""};
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

mode_t Mode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

constexpr const char* kClients[] = {"cambs-police",
                                    "peterborough-school-1",
                                    "nwangliaft-hospital",
                                    "triage-console",
                                    "triage-cli",
                                    "ops",
                                    "admin"};

class DevCertsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    const Result made = Shell("bash " + Quote(kDeploy + "make-dev-certs.sh") +
                              " " + Quote(dir_->Sub("certs")));
    ASSERT_EQ(made.exit_code, 0) << made.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string Cert(const std::string& name) {
    return dir_->Sub("certs/" + name);
  }
  // `openssl verify` of certs/<name>.pem against certs/ca.pem for `purpose`.
  static Result Verify(const std::string& name, const std::string& purpose) {
    return Shell("openssl verify -purpose " + purpose + " -CAfile " +
                 Quote(Cert("ca.pem")) + " " + Quote(Cert(name + ".pem")));
  }

  static testing::TempDir* dir_;
};

testing::TempDir* DevCertsTest::dir_ = nullptr;

TEST_F(DevCertsTest, ClientCertificatesVerifyForClientAuthentication) {
  for (const char* name : kClients) {
    const Result verified = Verify(name, "sslclient");
    EXPECT_EQ(verified.exit_code, 0) << name << ": " << verified.output;
  }
}

TEST_F(DevCertsTest, ServerCertificateVerifiesForLocalhost) {
  const Result verified = Verify("server", "sslserver");
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  const Result san = Shell("openssl x509 -noout -ext subjectAltName -in " +
                           Quote(Cert("server.pem")));
  EXPECT_THAT(san.output, HasSubstr("DNS:localhost"));
  EXPECT_THAT(san.output, HasSubstr("IP Address:127.0.0.1"));
}

TEST_F(DevCertsTest, ClientIdentityIsTheSpiffeUriAndTheName) {
  for (const char* name : kClients) {
    const Result shown =
        Shell("openssl x509 -noout -subject -ext subjectAltName -in " +
              Quote(Cert(std::string(name) + ".pem")));
    EXPECT_THAT(shown.output,
                HasSubstr(std::string("URI:spiffe://referral-broker/") + name))
        << name;
    EXPECT_THAT(shown.output, HasSubstr(std::string("CN = ") + name)) << name;
  }
}

TEST_F(DevCertsTest, ClientCertificatesCannotServeOrSign) {
  // Client-only: a stolen agency key cannot impersonate the broker or
  // issue further certificates.
  EXPECT_NE(Verify("cambs-police", "sslserver").exit_code, 0);
  const Result shown = Shell("openssl x509 -noout -ext basicConstraints -in " +
                             Quote(Cert("cambs-police.pem")));
  EXPECT_THAT(shown.output, HasSubstr("CA:FALSE"));
}

TEST_F(DevCertsTest, IntruderFromAnotherCaDoesNotVerify) {
  const Result verified = Verify("intruder", "sslclient");
  EXPECT_NE(verified.exit_code, 0);
  EXPECT_THAT(verified.output, HasSubstr("unable to get local issuer"));
  // It does verify against its own CA: it is a well-formed look-alike.
  const Result own =
      Shell("openssl verify -CAfile " + Quote(Cert("other-ca.pem")) + " " +
            Quote(Cert("intruder.pem")));
  EXPECT_EQ(own.exit_code, 0) << own.output;
}

TEST_F(DevCertsTest, ExpiredCertificateIsExpired) {
  const Result verified = Verify("expired", "sslclient");
  EXPECT_NE(verified.exit_code, 0);
  EXPECT_THAT(verified.output, HasSubstr("certificate has expired"));
}

TEST_F(DevCertsTest, PrivateKeysAreReadableByTheOwnerOnly) {
  for (const char* name :
       {"ca", "other-ca", "server", "intruder", "expired", "cambs-police",
        "peterborough-school-1", "nwangliaft-hospital", "triage-console",
        "triage-cli", "ops", "admin"}) {
    EXPECT_EQ(Mode(Cert(std::string(name) + ".key")), 0600u) << name;
    EXPECT_EQ(Mode(Cert(std::string(name) + ".pem")), 0644u) << name;
  }
}

TEST_F(DevCertsTest, IssuesACertificateForANewAgency) {
  const std::string out = dir_->Sub("new-agency");
  const Result issued =
      Shell("bash " + Quote(kDeploy + "issue-agency-cert.sh") + " " +
            Quote(dir_->Sub("certs")) + " fenland-gp " + Quote(out));
  ASSERT_EQ(issued.exit_code, 0) << issued.output;
  EXPECT_THAT(issued.output, HasSubstr("spiffe://referral-broker/fenland-gp"));
  EXPECT_EQ(Mode(out + "/fenland-gp.key"), 0600u);

  const Result verified =
      Shell("openssl verify -purpose sslclient -CAfile " +
            Quote(Cert("ca.pem")) + " " + Quote(out + "/fenland-gp.pem"));
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  const Result san = Shell("openssl x509 -noout -ext subjectAltName -in " +
                           Quote(out + "/fenland-gp.pem"));
  EXPECT_THAT(san.output, HasSubstr("URI:spiffe://referral-broker/fenland-gp"));
}

TEST_F(DevCertsTest, ReissuingRotatesTheKeyButKeepsTheIdentity) {
  const std::string out = dir_->Sub("rotation");
  const std::string issue = "bash " + Quote(kDeploy + "issue-agency-cert.sh") +
                            " " + Quote(dir_->Sub("certs")) + " march-school " +
                            Quote(out);
  ASSERT_EQ(Shell(issue).exit_code, 0);
  const std::string first_key = ReadFile(out + "/march-school.key");
  ASSERT_EQ(Shell(issue).exit_code, 0);
  EXPECT_NE(ReadFile(out + "/march-school.key"), first_key);
  const Result san = Shell("openssl x509 -noout -ext subjectAltName -in " +
                           Quote(out + "/march-school.pem"));
  EXPECT_THAT(san.output,
              HasSubstr("URI:spiffe://referral-broker/march-school"));
}

TEST_F(DevCertsTest, RefusesNamesThatAreNotIdentifiersOrWouldReplaceTheCa) {
  const std::string script = "bash " + Quote(kDeploy + "issue-agency-cert.sh") +
                             " " + Quote(dir_->Sub("certs")) + " ";
  const std::string ca_before = ReadFile(Cert("ca.pem"));
  for (const char* name : {"ca", "server", "Bad Name", "../escape", ""}) {
    const Result refused =
        Shell(script + Quote(name) + " " + Quote(dir_->Sub("certs")));
    EXPECT_EQ(refused.exit_code, 2) << name << ": " << refused.output;
  }
  EXPECT_EQ(ReadFile(Cert("ca.pem")), ca_before);
}

TEST(MakeEncryptionKeyTest, WritesAPrivateRandom256BitKey) {
  testing::TempDir dir;
  const std::string path = dir.Sub("keys/broker.key");
  const Result made = Shell(
      "bash " + Quote(kDeploy + "make-encryption-key.sh") + " " + Quote(path));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const std::string key = ReadFile(path);
  EXPECT_THAT(key, MatchesRegex("[0-9a-f]{64}\n"));
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_THAT(made.output, Not(HasSubstr(key.substr(0, 64))))
      << "the key is never printed";

  const std::string other = dir.Sub("keys/other.key");
  ASSERT_EQ(Shell("bash " + Quote(kDeploy + "make-encryption-key.sh") + " " +
                  Quote(other))
                .exit_code,
            0);
  EXPECT_NE(ReadFile(other), key);
}

TEST(MakeEncryptionKeyTest, NeverReplacesAnExistingKey) {
  testing::TempDir dir;
  const std::string path = dir.Sub("broker.key");
  const std::string script =
      "bash " + Quote(kDeploy + "make-encryption-key.sh") + " " + Quote(path);
  ASSERT_EQ(Shell(script).exit_code, 0);
  const std::string key = ReadFile(path);
  const Result again = Shell(script);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.output, HasSubstr("already exists"));
  EXPECT_EQ(ReadFile(path), key);
}

}  // namespace
}  // namespace referral
