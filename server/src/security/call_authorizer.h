// The one place that decides every call: who is calling (from the verified
// client certificate, through the principals file) and whether their roles
// allow the method. Deny by default. In development mode (plaintext on a
// loopback address, explicitly asked for) every call is allowed and the
// agency is taken from the request.
#ifndef REFERRAL_SERVER_CALL_AUTHORIZER_H_
#define REFERRAL_SERVER_CALL_AUTHORIZER_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "security/access_policy.h"
#include "security/principals.h"
#include "security/rate_limiter.h"

namespace referral::server {

// Metadata a trusted front-end (the triage console) sets to name the staff
// member it acts for; recorded in the audit trail.
inline constexpr char kOnBehalfOfHeader[] = "x-referral-on-behalf-of";

struct Caller {
  // Null in development mode.
  const Principal* principal = nullptr;
  // Recorded in histories: "agency:<id>", "triage:<name>", "ops:<name>",
  // "admin:<name>", or "development".
  std::string actor;
  // The authenticated agency, for agency principals.
  std::string agency_id;
  std::string on_behalf_of;
  // Who the audit trail records: the principal's name, or "development".
  std::string audit_principal;

  bool IsAgency() const {
    return principal != nullptr && principal->HasRole(Role::kAgency);
  }
};

class CallAuthorizer {
 public:
  // `directory` null: development mode. Every caller is held to `limit`
  // (per principal; in development, one bucket for everyone).
  CallAuthorizer(std::unique_ptr<PrincipalDirectory> directory, RateLimit limit,
                 std::function<absl::Time()> clock)
      : directory_(std::move(directory)),
        limiter_(limit),
        clock_(std::move(clock)) {}

  bool development() const { return directory_ == nullptr; }

  // UNAUTHENTICATED without a verified, registered client certificate;
  // PERMISSION_DENIED when the principal's roles do not allow `method`;
  // RESOURCE_EXHAUSTED, with the wait in the message, over the rate limit.
  // `calls`: what the call counts for against the rate limit (a batch
  // counts each of its items).
  absl::StatusOr<Caller> Authorize(const grpc::CallbackServerContext& call,
                                   BrokerMethod method, int calls = 1) const;

  // PERMISSION_DENIED when a triage principal may not use `queue`.
  absl::Status AuthorizeQueue(const Caller& caller,
                              std::string_view queue) const;

 private:
  std::unique_ptr<PrincipalDirectory> directory_;
  mutable RateLimiter limiter_;
  std::function<absl::Time()> clock_;
};

}  // namespace referral::server

#endif  // REFERRAL_SERVER_CALL_AUTHORIZER_H_
