// Principals: who the broker's callers are. The principals file
// (server/config/principals.txtpb, a config::v1::PrincipalsConfig) maps each
// verified client-certificate identity to a Principal with roles; the rest of
// the server sees only the plain Principal struct below, never the proto.
// Mistakes in the file are reported with their line so the broker refuses to
// start (or to reload) rather than guess who may see children's data.
#ifndef REFERRAL_SERVER_PRINCIPALS_H_
#define REFERRAL_SERVER_PRINCIPALS_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace referral::server {

// What a principal may do; access_policy.h maps roles to methods.
enum class Role {
  kAgency,  // a partner agency: its own referrals only
  kTriage,  // front-door triage, on its allowed queues
  kOps,     // statistics and dead-letter counts, no personal data
  kAdmin,   // requeue, reload, audit, backup, and what ops may do
};

// "agency", "triage", "ops" or "admin": for logs and audit records.
std::string_view RoleName(Role role);

struct Principal {
  // Audit name, e.g. "cambs-police": [a-z0-9-]{1,64}, unique per directory.
  std::string name;
  // The certificate identity that maps here (URI SAN or CN).
  std::string identity;
  // Never empty for a principal from a directory.
  std::set<Role> roles;
  // Set exactly when roles contains kAgency: the agency whose referrals
  // this principal submits and may see.
  std::string agency_id;
  // For kTriage: the queues it may use; empty means every queue.
  std::vector<std::string> allowed_queues;

  bool HasRole(Role role) const { return roles.contains(role); }
  // True when allowed_queues is empty or lists `queue`. Says nothing about
  // roles: AuthorizeQueue (access_policy.h) combines the two.
  bool MayUseQueue(std::string_view queue) const;
};

// The parsed principals file: an immutable identity -> Principal map. A
// reload builds a new directory and swaps it in whole, so a caller holding
// a Principal* keeps a consistent view for the rest of its call as long as
// it also holds the directory.
class PrincipalDirectory {
 public:
  // Parses and validates a PrincipalsConfig in text format. All errors are
  // INVALID_ARGUMENT, joined with "; ", each located in the source:
  //   syntax:   "<source_name>:<line>:<column>: <reason>"
  //   semantic: "<source_name>:<line>:<column>: <field path>: <reason>"
  // ("<source_name>: <field path>: <reason>" when there is no line to
  // point at). Semantic errors: empty or duplicate identity, bad or
  // duplicate name, no roles, unspecified or repeated role, ROLE_AGENCY
  // combined with another role, missing or bad agency_id for an agency (or
  // one set without ROLE_AGENCY), bad or repeated allowed_queues (or any set
  // without ROLE_TRIAGE), and a file with no principals.
  static absl::StatusOr<std::unique_ptr<PrincipalDirectory>> Parse(
      std::string_view text, std::string_view source_name);
  // Parse() on the contents of a file; NOT_FOUND when it cannot be read.
  static absl::StatusOr<std::unique_ptr<PrincipalDirectory>> LoadFile(
      std::string_view path);

  PrincipalDirectory(const PrincipalDirectory&) = delete;
  PrincipalDirectory& operator=(const PrincipalDirectory&) = delete;

  // The principal whose identity is exactly `identity` (case-sensitive, as
  // certificate names are compared byte for byte), or nullptr. The pointer
  // lives as long as the directory.
  const Principal* Find(std::string_view identity) const;

  // Every principal, in file order.
  const std::vector<Principal>& principals() const { return principals_; }

  // Cross-checks allowed_queues against the configured work queues (the
  // routing table), which this file does not know: INVALID_ARGUMENT naming
  // the principal and queue for each unknown one, because a typo would
  // otherwise silently leave a triage tool with an empty queue.
  absl::Status CheckQueues(
      absl::FunctionRef<bool(std::string_view)> queue_exists) const;

 private:
  explicit PrincipalDirectory(std::vector<Principal> principals);

  std::vector<Principal> principals_;
  // identity -> index into principals_; std::less<> for string_view lookup.
  std::map<std::string, size_t, std::less<>> by_identity_;
};

}  // namespace referral::server

#endif  // REFERRAL_SERVER_PRINCIPALS_H_
