#include "principals.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "server/v1/principals.pb.h"

namespace referral::server {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::TextFormat;
using ParseInfoTree = TextFormat::ParseInfoTree;
using ParseLocation = TextFormat::ParseLocation;

// SPIFFE IDs may be up to 2048 bytes; nothing longer is a real identity.
constexpr size_t kMaxIdentityLength = 2048;

// Debian's Abseil has its own string_view, which absl::StrCat requires.
absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

// Names, agency ids and queue names are written to audit records and logs,
// so they keep to the same safe alphabet as queue names in routing.
bool IsValidName(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
         });
}

// Printable ASCII without surrounding spaces: gRPC hands us certificate
// names as UTF-8, and keeping the file to ASCII rules out look-alike
// characters that would make two identities read the same to a reviewer.
bool IsValidIdentity(std::string_view identity) {
  if (identity.empty() || identity.size() > kMaxIdentityLength) return false;
  if (identity.front() == ' ' || identity.back() == ' ') return false;
  return std::all_of(identity.begin(), identity.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// Collects text-format syntax errors as "<source>:<line>:<column>: reason"
// (1-based, as editors count).
class SourceErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  SourceErrorCollector(std::vector<std::string>* errors,
                       std::string_view source)
      : errors_(errors), source_(source) {}

  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    errors_->push_back(
        absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message));
  }

 private:
  std::vector<std::string>* errors_;
  std::string source_;
};

// Semantic errors, each placed at the text of the offending field.
class ConfigErrors {
 public:
  explicit ConfigErrors(std::string_view source) : source_(source) {}

  void Add(ParseLocation where, const std::string& field_path,
           const std::string& reason) {
    if (where.line >= 0) {
      errors_.push_back(absl::StrCat(source_, ":", where.line + 1, ":",
                                     where.column + 1, ": ", field_path, ": ",
                                     reason));
    } else {
      errors_.push_back(absl::StrCat(source_, ": ", field_path, ": ", reason));
    }
  }
  bool empty() const { return errors_.empty(); }
  absl::Status ToStatus() const {
    return absl::InvalidArgumentError(absl::StrJoin(errors_, "; "));
  }

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

// Where field `name` (value `index`, -1 for a singular field) of the message
// whose parse info is `tree` was written, or `fallback` when it was not.
ParseLocation Where(const ParseInfoTree* tree, const Descriptor* type,
                    const char* name, int index, ParseLocation fallback) {
  if (tree == nullptr) return fallback;
  const FieldDescriptor* field = type->FindFieldByName(name);
  ParseLocation at = tree->GetLocation(field, index);
  // A list literal (`roles: [A, B]`) records one location for the field,
  // not one per value.
  if (at.line < 0 && index > 0) at = tree->GetLocation(field, 0);
  return at.line >= 0 ? at : fallback;
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
  ParseInfoTree tree;
  {
    std::vector<std::string> syntax_errors;
    SourceErrorCollector collector(&syntax_errors, source_name);
    TextFormat::Parser parser;
    parser.RecordErrorsTo(&collector);
    parser.WriteLocationsTo(&tree);
    if (!parser.ParseFromString(std::string(text), &config)) {
      return absl::InvalidArgumentError(absl::StrJoin(syntax_errors, "; "));
    }
  }

  // Every problem is collected so that one edit can fix them all.
  ConfigErrors errors(source_name);
  const ParseLocation nowhere;
  const Descriptor* file_type = config::v1::PrincipalsConfig::descriptor();
  const Descriptor* type = config::v1::Principal::descriptor();
  std::set<std::string, std::less<>> identities;
  std::set<std::string, std::less<>> names;
  std::vector<Principal> principals;

  for (int i = 0; i < config.principals_size(); ++i) {
    const config::v1::Principal& entry = config.principals(i);
    const std::string path = absl::StrCat("principals[", i, "]");
    const ParseLocation at = Where(&tree, file_type, "principals", i, nowhere);
    const ParseInfoTree* sub =
        tree.GetTreeForNested(file_type->FindFieldByName("principals"), i);
    auto where = [&](const char* field, int index) {
      return Where(sub, type, field, index, at);
    };

    Principal principal;
    principal.identity = entry.identity();
    principal.name = entry.name();
    principal.agency_id = entry.agency_id();

    // Identities are certificate names, not personal data about children,
    // so echoing a duplicate back helps whoever edits the file.
    if (!IsValidIdentity(entry.identity())) {
      errors.Add(where("identity", -1), path + ".identity",
                 "required: the certificate's URI SAN or CN, printable ASCII "
                 "without surrounding spaces, at most 2048 characters");
    } else if (!identities.insert(entry.identity()).second) {
      errors.Add(where("identity", -1), path + ".identity",
                 absl::StrCat("duplicate identity \"", entry.identity(), "\""));
    }

    if (!IsValidName(entry.name())) {
      errors.Add(where("name", -1), path + ".name",
                 "required: 1 to 64 characters from [a-z0-9-]");
    } else if (!names.insert(entry.name()).second) {
      errors.Add(where("name", -1), path + ".name",
                 absl::StrCat("duplicate name \"", entry.name(), "\""));
    }

    if (entry.roles().empty()) {
      errors.Add(at, path + ".roles", "required: at least one role");
    }
    for (int j = 0; j < entry.roles_size(); ++j) {
      const std::string role_path = absl::StrCat(path, ".roles[", j, "]");
      const std::optional<Role> role = FromProto(entry.roles(j));
      if (!role.has_value()) {
        errors.Add(where("roles", j), role_path,
                   "must be ROLE_AGENCY, ROLE_TRIAGE, ROLE_OPS or ROLE_ADMIN");
      } else if (!principal.roles.insert(*role).second) {
        errors.Add(where("roles", j), role_path, "role listed more than once");
      }
    }
    const bool agency = principal.HasRole(Role::kAgency);
    // Partner certificates live outside the council; one that could also
    // triage or administer would put every child's referral one stolen key
    // away, so mixing is treated as a mistake rather than a choice.
    if (agency && principal.roles.size() > 1) {
      errors.Add(where("roles", 0), path + ".roles",
                 "ROLE_AGENCY cannot be combined with other roles");
    }

    if (agency && !IsValidName(entry.agency_id())) {
      errors.Add(where("agency_id", -1), path + ".agency_id",
                 entry.agency_id().empty()
                     ? "required with ROLE_AGENCY"
                     : "must be 1 to 64 characters from [a-z0-9-]");
    } else if (!agency && !entry.agency_id().empty()) {
      errors.Add(where("agency_id", -1), path + ".agency_id",
                 "only allowed with ROLE_AGENCY");
    }

    const bool triage = principal.HasRole(Role::kTriage);
    if (!triage && !entry.allowed_queues().empty()) {
      errors.Add(where("allowed_queues", 0), path + ".allowed_queues",
                 "only allowed with ROLE_TRIAGE");
    }
    for (int j = 0; j < entry.allowed_queues_size(); ++j) {
      const std::string& queue = entry.allowed_queues(j);
      const std::string queue_path =
          absl::StrCat(path, ".allowed_queues[", j, "]");
      if (!IsValidName(queue)) {
        errors.Add(where("allowed_queues", j), queue_path,
                   "must be a queue name: 1 to 64 characters from [a-z0-9-]");
      } else if (std::find(principal.allowed_queues.begin(),
                           principal.allowed_queues.end(),
                           queue) != principal.allowed_queues.end()) {
        errors.Add(where("allowed_queues", j), queue_path,
                   absl::StrCat("queue \"", queue, "\" listed more than once"));
      } else {
        principal.allowed_queues.push_back(queue);
      }
    }
    principals.push_back(std::move(principal));
  }
  // An empty file would lock everyone out; almost certainly the wrong file.
  if (config.principals().empty()) {
    errors.Add(nowhere, "principals", "required: at least one principal");
  }

  if (!errors.empty()) return errors.ToStatus();
  return std::unique_ptr<PrincipalDirectory>(
      new PrincipalDirectory(std::move(principals)));
}

absl::StatusOr<std::unique_ptr<PrincipalDirectory>>
PrincipalDirectory::LoadFile(std::string_view path) {
  std::ifstream in{std::string(path)};
  if (!in) {
    return absl::NotFoundError(absl::StrCat(Absl(path), ": cannot open file"));
  }
  std::stringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return absl::NotFoundError(absl::StrCat(Absl(path), ": cannot read file"));
  }
  return Parse(contents.str(), path);
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
