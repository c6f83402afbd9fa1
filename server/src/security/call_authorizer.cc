#include "security/call_authorizer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/json_log.h"
#include "security/peer_identity.h"

namespace referral::server {
namespace {

constexpr size_t kMaxOnBehalfOfBytes = 256;

// The staff member named by a trusted front-end, if any. Only triage
// principals may speak for someone else; printable ASCII only, since it is
// written into histories and the audit trail.
absl::StatusOr<std::string> OnBehalfOf(const grpc::CallbackServerContext& call,
                                       const Principal* principal) {
  const auto& metadata = call.client_metadata();
  auto found = metadata.find(kOnBehalfOfHeader);
  if (found == metadata.end()) return std::string();
  std::string name(found->second.data(), found->second.size());
  if (principal != nullptr && !principal->HasRole(Role::kTriage)) {
    return absl::PermissionDeniedError(
        "x-referral-on-behalf-of: only a triage principal may act for staff");
  }
  const bool printable = std::all_of(
      name.begin(), name.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  if (name.empty() || name.size() > kMaxOnBehalfOfBytes || !printable) {
    return absl::InvalidArgumentError(
        "x-referral-on-behalf-of: must be 1 to 256 printable characters");
  }
  return name;
}

std::string ActorFor(const Principal& principal) {
  if (principal.HasRole(Role::kAgency)) {
    return absl::StrCat("agency:", principal.agency_id);
  }
  for (Role role : {Role::kTriage, Role::kAdmin, Role::kOps}) {
    if (principal.HasRole(role)) {
      return absl::StrCat(std::string(RoleName(role)), ":", principal.name);
    }
  }
  return principal.name;
}

}  // namespace

absl::StatusOr<Caller> CallAuthorizer::Authorize(
    const grpc::CallbackServerContext& call, BrokerMethod method,
    int calls) const {
  Caller caller;
  if (development()) {
    caller.actor = "development";
    caller.audit_principal = "development";
  } else {
    absl::StatusOr<const Principal*> principal =
        AuthenticatePeer(call.auth_context().get(), *directory_);
    if (!principal.ok()) return principal.status();
    absl::Status allowed = server::Authorize(**principal, method);
    if (!allowed.ok()) return allowed;
    caller.principal = *principal;
    caller.actor = ActorFor(**principal);
    caller.audit_principal = (*principal)->name;
    caller.agency_id = (*principal)->agency_id;
  }
  // Held to the rate limit once known, before any work is done for it.
  const std::string limited =
      caller.principal != nullptr ? caller.principal->name : caller.actor;
  const absl::Duration wait = limiter_.Admit(limited, clock_(), calls);
  if (wait > absl::ZeroDuration()) {
    const int64_t wait_ms = std::max<int64_t>(
        1, absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))));
    LogEvent(
        LogLevel::kWarning, "rate_limited",
        {{"principal", limited}, {"retry_after_ms", absl::StrCat(wait_ms)}});
    return absl::ResourceExhaustedError(
        absl::StrCat("rate limit exceeded; retry after ", wait_ms, " ms"));
  }
  absl::StatusOr<std::string> on_behalf_of = OnBehalfOf(call, caller.principal);
  if (!on_behalf_of.ok()) return on_behalf_of.status();
  caller.on_behalf_of = *std::move(on_behalf_of);
  if (!caller.on_behalf_of.empty()) {
    absl::StrAppend(&caller.actor, " for ", caller.on_behalf_of);
  }
  return caller;
}

absl::Status CallAuthorizer::AuthorizeQueue(const Caller& caller,
                                            std::string_view queue) const {
  if (caller.principal == nullptr) return absl::OkStatus();
  return server::AuthorizeQueue(*caller.principal, queue);
}

}  // namespace referral::server
