// One change queued for the commit thread, as ReferralStore::Commit hands it
// over (commands.h), and the helpers each command's NewMutation builds it
// with. A command's apply code lives in its own file and reaches the store
// only through the Group it is applied to.
#ifndef REFERRAL_STORAGE_SRC_MUTATION_H_
#define REFERRAL_STORAGE_SRC_MUTATION_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "group.h"
#include "storage/commands.h"

namespace referral::storage {

// One audit record to append, before it gets its place in the chain.
struct AuditEntry {
  std::string principal;
  std::string on_behalf_of;
  std::string action;
  std::string referral_id;
  std::string result;  // "OK" or the status code name
  // The record's time; the commit thread's clock when unset.
  std::optional<absl::Time> at = std::nullopt;
};

class Mutation {
 public:
  virtual ~Mutation() = default;
  // Adds the change to the group. On error the caller rolls the batch and
  // the group's state back to where they were before.
  virtual absl::Status Apply(Group& group) = 0;
  // The audit records of the change, given what Apply returned; called
  // once, right after Apply (and after a failed one is rolled back).
  virtual std::vector<AuditEntry> AuditEntries(const absl::Status& status) = 0;
  // Reports the outcome; called exactly once.
  virtual void Complete(absl::Status status) = 0;

  // When the store took it (for GroupCommitTiming::waited).
  absl::Time enqueued_at;
};

// "OK" or the status code's name, as audit records carry it.
std::string ResultName(const absl::Status& status);

// A referral id as the caller gave it, when it is one: a malformed "id" is
// arbitrary caller text and does not belong in the trail.
std::string AuditableId(std::string_view id);

// The audit records of a change that acts on several referrals: one per
// referral in `ids` (none when there were none) when it succeeded, else one
// naming no referral with its status.
std::vector<AuditEntry> AuditEach(const AuditContext& who,
                                  std::string_view action,
                                  const absl::Status& status,
                                  const std::vector<std::string>& ids);

// Appends `entries` to the group's batch as the next links of the audit
// chain (audit_trail.cc), so they commit or fail with the group.
absl::Status AppendAudit(Group& group, std::vector<AuditEntry> entries);

// A mutation from its apply function (run on the commit thread) and its
// audit function (given Apply's result).
template <typename T>
class TypedMutation final : public Mutation {
 public:
  using ApplyFn = absl::AnyInvocable<absl::StatusOr<T>(Group&)>;
  using AuditFn =
      absl::AnyInvocable<std::vector<AuditEntry>(const absl::StatusOr<T>&)>;
  TypedMutation(ApplyFn apply, Done<T> done, AuditFn audit)
      : apply_(std::move(apply)),
        done_(std::move(done)),
        audit_(std::move(audit)) {}

  absl::Status Apply(Group& group) override {
    absl::StatusOr<T> result = apply_(group);
    if (!result.ok()) return result.status();
    result_ = std::move(result);
    return absl::OkStatus();
  }
  std::vector<AuditEntry> AuditEntries(const absl::Status& status) override {
    if (status.ok() && result_.has_value()) return audit_(*result_);
    return audit_(status.ok() ? absl::InternalError("no result") : status);
  }
  void Complete(absl::Status status) override {
    if (status.ok() && result_.has_value()) {
      std::move(done_)(*std::move(result_));
    } else {
      std::move(done_)(status.ok() ? absl::InternalError("no result") : status);
    }
  }

 private:
  ApplyFn apply_;
  Done<T> done_;
  AuditFn audit_;
  std::optional<absl::StatusOr<T>> result_;
};

template <typename T>
MutationPtr MakeMutation(typename TypedMutation<T>::ApplyFn apply, Done<T> done,
                         typename TypedMutation<T>::AuditFn audit) {
  return MutationPtr(new TypedMutation<T>(std::move(apply), std::move(done),
                                          std::move(audit)));
}

// Who a command is audited as: its AuditContext, else its actor.
template <typename Command>
AuditContext AuditedAs(const Command& command) {
  return {
      command.audit.principal.empty() ? command.actor : command.audit.principal,
      command.audit.on_behalf_of};
}

// The mutation of a command that acts on one named referral
// (command.referral_id): `apply(command, group)` on the commit thread, and
// one audit record `action` whatever the outcome.
template <typename Command, typename Apply>
MutationPtr OneReferralMutation(Command command,
                                Done<typename Command::Result> done,
                                std::string action, Apply apply) {
  using Result = typename Command::Result;
  AuditContext who = AuditedAs(command);
  AuditEntry entry{std::move(who.principal), std::move(who.on_behalf_of),
                   std::move(action), AuditableId(command.referral_id), ""};
  return MakeMutation<Result>(
      [command = std::move(command), apply](Group& group) {
        return apply(command, group);
      },
      std::move(done),
      [entry = std::move(entry)](const absl::StatusOr<Result>& r) {
        AuditEntry audited = entry;
        audited.result = ResultName(r.status());
        return std::vector<AuditEntry>{std::move(audited)};
      });
}

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_SRC_MUTATION_H_
