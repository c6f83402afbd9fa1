// Peer identity: who is calling, as proved by the client certificate that
// gRPC's TLS handshake verified against the broker's CA. Reads the verified
// names from the call's grpc::AuthContext and maps them to a Principal
// through the PrincipalDirectory; the access policy then decides what that
// principal may do.
//
// Trust rests entirely on the server's credentials: they must require and
// verify client certificates (grpc::SslServerCredentialsOptions with
// GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY and the
// broker's CA as pem_root_certs). gRPC also fills the AuthContext from
// certificates it did not verify when asked to (the *_BUT_DONT_VERIFY
// modes), and nothing in the context tells the two apart.
#ifndef REFERRAL_SERVER_PEER_IDENTITY_H_
#define REFERRAL_SERVER_PEER_IDENTITY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/security/auth_context.h"
#include "security/principals.h"

namespace referral::server {

// The peer's certificate identities, strongest kind first: URI subject
// alternative names (e.g. "spiffe://referral-broker/cambs-police") in
// certificate order, then subject common names. Empty when the call did not
// come over TLS with a client certificate. gRPC 1.51 reports every SAN (DNS,
// email, URI, IP) under one property, "x509_subject_alternative_name", so
// URIs are recognised by their "scheme://" prefix, which no DNS name, IP
// address or unquoted e-mail address can have.
std::vector<std::string> PeerIdentities(const grpc::AuthContext& context);

// The principal the peer's certificate maps to. When the certificate has URI
// SANs only they are looked up (a registered URI is the identity we issue;
// falling back to the CN would let a certificate's second name choose its
// powers); otherwise its CN is. Errors, none of which echo the certificate:
//   UNAUTHENTICATED "no verified client certificate": no context, not TLS,
//     or no certificate names.
//   UNAUTHENTICATED "client certificate is not registered with this broker":
//     a valid certificate whose identity is not in the directory. Not
//     PERMISSION_DENIED, which the broker keeps for a known principal asking
//     for something its roles do not allow: an unlisted (e.g. revoked)
//     partner has no usable credentials here, and should be told to present
//     different ones, not that it lacks a permission.
//   UNAUTHENTICATED "client certificate matches more than one principal":
//     ambiguous certificates are refused rather than resolved by order.
// The returned pointer lives as long as `directory`.
absl::StatusOr<const Principal*> AuthenticatePeer(
    const grpc::AuthContext* context, const PrincipalDirectory& directory);

}  // namespace referral::server

#endif  // REFERRAL_SERVER_PEER_IDENTITY_H_
