#include "support/dev_pki.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "support/broker_process.h"

namespace referral::testing {

absl::Status MakeDevPki(const std::string& dir) {
  auto result = RunCommand(
      {"/bin/bash",
       absl::StrCat(REFERRAL_SOURCE_DIR, "/deploy/make-dev-certs.sh"), dir});
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("make-dev-certs.sh failed: ", result->err));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> TlsChannel(
    const std::string& address, const std::string& pki_dir,
    const std::string& client) {
  grpc::SslCredentialsOptions options;
  auto ca = ReadWholeFile(pki_dir + "/ca.pem");
  if (!ca.ok()) return ca.status();
  options.pem_root_certs = *ca;
  if (!client.empty()) {
    auto cert = ReadWholeFile(absl::StrCat(pki_dir, "/", client, ".pem"));
    auto key = ReadWholeFile(absl::StrCat(pki_dir, "/", client, ".key"));
    if (!cert.ok()) return cert.status();
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert;
    options.pem_private_key = *key;
  }
  grpc::ChannelArguments args;
  // The server certificate names localhost and 127.0.0.1.
  args.SetSslTargetNameOverride("localhost");
  // Each test channel gets its own connection, so one client's failed
  // handshake is never shared with another's.
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(options),
                                   args);
}

}  // namespace referral::testing
