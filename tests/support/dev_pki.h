// Test support: the development PKI from deploy/make-dev-certs.sh, generated
// into a test's own directory (no key is ever committed), and TLS channels
// that present one of its client certificates.
#ifndef REFERRAL_TESTS_SUPPORT_DEV_PKI_H_
#define REFERRAL_TESTS_SUPPORT_DEV_PKI_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace referral::testing {

// Runs deploy/make-dev-certs.sh into `dir`: ca.pem, server.pem/key, one
// client certificate per sample principal (cambs-police, triage-cli, ops,
// admin, ...), intruder (another CA) and expired.
absl::Status MakeDevPki(const std::string& dir);

absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// A channel to a TLS broker on loopback that trusts the dev CA in `pki_dir`
// and presents the client certificate `<client>.pem` (none when `client` is
// empty).
absl::StatusOr<std::shared_ptr<grpc::Channel>> TlsChannel(
    const std::string& address, const std::string& pki_dir,
    const std::string& client);

}  // namespace referral::testing

#endif  // REFERRAL_TESTS_SUPPORT_DEV_PKI_H_
