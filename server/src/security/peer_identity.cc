#include "security/peer_identity.h"

#include <algorithm>
#include <string_view>

#include "absl/status/status.h"
#include "grpc/grpc_security_constants.h"

namespace referral::server {
namespace {

struct CertificateNames {
  std::vector<std::string> uris;
  std::vector<std::string> common_names;
};

// RFC 3986 scheme followed by "://": ALPHA *( ALPHA / DIGIT / "+" / "-" /
// "." ) "://". DNS names and IP addresses have no "://", and an e-mail
// address can only contain ':' inside a quoted local part, which starts with
// '"' and so fails the leading-letter test.
bool IsUri(std::string_view name) {
  const size_t end = name.find("://");
  if (end == std::string_view::npos || end == 0) return false;
  const auto is_alpha = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  };
  if (!is_alpha(name[0])) return false;
  return std::all_of(name.begin() + 1, name.begin() + end, [&](char c) {
    return is_alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' ||
           c == '.';
  });
}

void AddUnique(std::vector<std::string>& names, grpc::string_ref value) {
  std::string name(value.data(), value.size());
  if (name.empty()) return;
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    names.push_back(std::move(name));
  }
}

bool IsTls(const grpc::AuthContext& context) {
  for (const grpc::string_ref& type :
       context.FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME)) {
    if (type == GRPC_SSL_TRANSPORT_SECURITY_TYPE ||
        type == GRPC_TLS_TRANSPORT_SECURITY_TYPE) {
      return true;
    }
  }
  return false;
}

CertificateNames NamesOf(const grpc::AuthContext& context) {
  CertificateNames names;
  // IsPeerAuthenticated() is true whenever the transport set a peer
  // identity; over TLS that means the client presented a certificate, which
  // the server's credentials are required to have verified.
  if (!context.IsPeerAuthenticated() || !IsTls(context)) return names;
  for (const grpc::string_ref& san :
       context.FindPropertyValues(GRPC_X509_SAN_PROPERTY_NAME)) {
    if (IsUri(std::string_view(san.data(), san.size()))) {
      AddUnique(names.uris, san);
    }
  }
  // Later gRPC releases also list URI SANs on their own; 1.51 lists only a
  // certificate's single SPIFFE ID there. Either is a subset of the SANs
  // above, so these only matter if a release stops repeating them.
  for (const char* property :
       {GRPC_PEER_URI_PROPERTY_NAME, GRPC_PEER_SPIFFE_ID_PROPERTY_NAME}) {
    for (const grpc::string_ref& uri : context.FindPropertyValues(property)) {
      if (IsUri(std::string_view(uri.data(), uri.size()))) {
        AddUnique(names.uris, uri);
      }
    }
  }
  for (const grpc::string_ref& cn :
       context.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
    AddUnique(names.common_names, cn);
  }
  return names;
}

}  // namespace

std::vector<std::string> PeerIdentities(const grpc::AuthContext& context) {
  CertificateNames names = NamesOf(context);
  std::vector<std::string> identities = std::move(names.uris);
  for (std::string& cn : names.common_names) {
    identities.push_back(std::move(cn));
  }
  return identities;
}

absl::StatusOr<const Principal*> AuthenticatePeer(
    const grpc::AuthContext* context, const PrincipalDirectory& directory) {
  if (context == nullptr) {
    return absl::UnauthenticatedError("no verified client certificate");
  }
  const CertificateNames names = NamesOf(*context);
  const std::vector<std::string>& candidates =
      names.uris.empty() ? names.common_names : names.uris;
  if (candidates.empty()) {
    return absl::UnauthenticatedError("no verified client certificate");
  }
  const Principal* found = nullptr;
  for (const std::string& identity : candidates) {
    const Principal* principal = directory.Find(identity);
    if (principal == nullptr || principal == found) continue;
    if (found != nullptr) {
      return absl::UnauthenticatedError(
          "client certificate matches more than one principal");
    }
    found = principal;
  }
  if (found == nullptr) {
    return absl::UnauthenticatedError(
        "client certificate is not registered with this broker");
  }
  return found;
}

}  // namespace referral::server
