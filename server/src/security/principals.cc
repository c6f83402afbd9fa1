#include "security/principals.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "rules/names.h"
#include "server/v1/principals.pb.h"
#include "settings/text_config.h"

namespace referral::server {
namespace {

// SPIFFE IDs may be up to 2048 bytes; nothing longer is a real identity.
constexpr size_t kMaxIdentityLength = 2048;

// Printable ASCII without surrounding spaces: gRPC hands us certificate
// names as UTF-8, and keeping the file to ASCII rules out look-alike
// characters that would make two identities read the same to a reviewer.
bool IsValidIdentity(std::string_view identity) {
  if (identity.empty() || identity.size() > kMaxIdentityLength) return false;
  if (identity.front() == ' ' || identity.back() == ' ') return false;
  return std::all_of(identity.begin(), identity.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e; });
}

std::optional<Role> FromProto(int role) {
  switch (role) {
    case config::v1::ROLE_AGENCY:
      return Role::kAgency;
    case config::v1::ROLE_TRIAGE:
      return Role::kTriage;
    case config::v1::ROLE_OPS:
      return Role::kOps;
    case config::v1::ROLE_ADMIN:
      return Role::kAdmin;
    default:
      return std::nullopt;
  }
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAgency:
      return "agency";
    case Role::kTriage:
      return "triage";
    case Role::kOps:
      return "ops";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

bool Principal::MayUseQueue(std::string_view queue) const {
  return allowed_queues.empty() ||
         std::find(allowed_queues.begin(), allowed_queues.end(), queue) !=
             allowed_queues.end();
}

PrincipalDirectory::PrincipalDirectory(std::vector<Principal> principals)
    : principals_(std::move(principals)) {
  for (size_t i = 0; i < principals_.size(); ++i) {
    by_identity_.emplace(principals_[i].identity, i);
  }
}

absl::StatusOr<std::unique_ptr<PrincipalDirectory>> PrincipalDirectory::Parse(
    std::string_view text, std::string_view source_name) {
  config::v1::PrincipalsConfig config;
  ConfigParseTree tree;
  if (absl::Status parsed = ParseTextConfig(text, source_name, &config, &tree);
      !parsed.ok()) {
    return parsed;
  }

  // Every problem is collected so that one edit can fix them all.
  ConfigErrors errors(source_name);
  const ConfigLocator file(&tree, config::v1::PrincipalsConfig::descriptor());
  std::set<std::string, std::less<>> identities;
  std::set<std::string, std::less<>> names;
  std::vector<Principal> principals;

  for (int i = 0; i < config.principals_size(); ++i) {
    const config::v1::Principal& entry = config.principals(i);
    const std::string path = absl::StrCat("principals[", i, "]");
    const ConfigLocator at = file.Nested("principals", i);

    Principal principal;
    principal.identity = entry.identity();
    principal.name = entry.name();
    principal.agency_id = entry.agency_id();

    // Identities are certificate names, not personal data about children,
    // so echoing a duplicate back helps whoever edits the file.
    if (!IsValidIdentity(entry.identity())) {
      errors.Add(at.Field("identity"), path + ".identity",
                 "required: the certificate's URI SAN or CN, printable ASCII "
                 "without surrounding spaces, at most 2048 characters");
    } else if (!identities.insert(entry.identity()).second) {
      errors.Add(at.Field("identity"), path + ".identity",
                 absl::StrCat("duplicate identity \"", entry.identity(), "\""));
    }

    if (!IsValidName(entry.name())) {
      errors.Add(at.Field("name"), path + ".name",
                 "required: 1 to 64 characters from [a-z0-9-]");
    } else if (!names.insert(entry.name()).second) {
      errors.Add(at.Field("name"), path + ".name",
                 absl::StrCat("duplicate name \"", entry.name(), "\""));
    }

    if (entry.roles().empty()) {
      errors.Add(at.self(), path + ".roles", "required: at least one role");
    }
    for (int j = 0; j < entry.roles_size(); ++j) {
      const std::string role_path = absl::StrCat(path, ".roles[", j, "]");
      const std::optional<Role> role = FromProto(entry.roles(j));
      if (!role.has_value()) {
        errors.Add(at.Field("roles", j), role_path,
                   "must be ROLE_AGENCY, ROLE_TRIAGE, ROLE_OPS or ROLE_ADMIN");
      } else if (!principal.roles.insert(*role).second) {
        errors.Add(at.Field("roles", j), role_path,
                   "role listed more than once");
      }
    }
    const bool agency = principal.HasRole(Role::kAgency);
    // Partner certificates live outside the council; one that could also
    // triage or administer would put every child's referral one stolen key
    // away, so mixing is treated as a mistake rather than a choice.
    if (agency && principal.roles.size() > 1) {
      errors.Add(at.Field("roles", 0), path + ".roles",
                 "ROLE_AGENCY cannot be combined with other roles");
    }

    if (agency && !IsValidName(entry.agency_id())) {
      errors.Add(at.Field("agency_id"), path + ".agency_id",
                 entry.agency_id().empty()
                     ? "required with ROLE_AGENCY"
                     : "must be 1 to 64 characters from [a-z0-9-]");
    } else if (!agency && !entry.agency_id().empty()) {
      errors.Add(at.Field("agency_id"), path + ".agency_id",
                 "only allowed with ROLE_AGENCY");
    }

    const bool triage = principal.HasRole(Role::kTriage);
    if (!triage && !entry.allowed_queues().empty()) {
      errors.Add(at.Field("allowed_queues", 0), path + ".allowed_queues",
                 "only allowed with ROLE_TRIAGE");
    }
    for (int j = 0; j < entry.allowed_queues_size(); ++j) {
      const std::string& queue = entry.allowed_queues(j);
      const std::string queue_path =
          absl::StrCat(path, ".allowed_queues[", j, "]");
      if (!IsValidName(queue)) {
        errors.Add(at.Field("allowed_queues", j), queue_path,
                   "must be a queue name: 1 to 64 characters from [a-z0-9-]");
      } else if (std::find(principal.allowed_queues.begin(),
                           principal.allowed_queues.end(),
                           queue) != principal.allowed_queues.end()) {
        errors.Add(at.Field("allowed_queues", j), queue_path,
                   absl::StrCat("queue \"", queue, "\" listed more than once"));
      } else {
        principal.allowed_queues.push_back(queue);
      }
    }
    principals.push_back(std::move(principal));
  }
  // An empty file would lock everyone out; almost certainly the wrong file.
  if (config.principals().empty()) {
    errors.Add(file.self(), "principals", "required: at least one principal");
  }

  if (!errors.empty()) return errors.ToStatus();
  return std::unique_ptr<PrincipalDirectory>(
      new PrincipalDirectory(std::move(principals)));
}

absl::StatusOr<std::unique_ptr<PrincipalDirectory>>
PrincipalDirectory::LoadFile(std::string_view path) {
  absl::StatusOr<std::string> text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

const Principal* PrincipalDirectory::Find(std::string_view identity) const {
  const auto it = by_identity_.find(identity);
  return it == by_identity_.end() ? nullptr : &principals_[it->second];
}

absl::Status PrincipalDirectory::CheckQueues(
    absl::FunctionRef<bool(std::string_view)> queue_exists) const {
  std::vector<std::string> unknown;
  for (const Principal& principal : principals_) {
    for (const std::string& queue : principal.allowed_queues) {
      if (!queue_exists(queue)) {
        unknown.push_back(absl::StrCat("principal \"", principal.name,
                                       "\": unknown queue \"", queue, "\""));
      }
    }
  }
  if (unknown.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(unknown, "; "));
}

}  // namespace referral::server
