// The audit trail: appending each group's records to the hash chain
// (audit_chain.h) in the group's own batch, recording reads
// (RecordAccessCommand), and exporting and verifying the chain.
#include "storage/audit_trail.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "audit_chain.h"
#include "base/status_macros.h"
#include "key_codec.h"
#include "mutation.h"
#include "record_util.h"
#include "referral_store_impl.h"

namespace referral::storage {

std::string ResultName(const absl::Status& status) {
  return status.ok() ? "OK" : absl::StatusCodeToString(status.code());
}

std::string AuditableId(std::string_view id) {
  return keys::ParseReferralId(id).has_value() ? std::string(id) : "";
}

std::vector<AuditEntry> AuditEach(const AuditContext& who,
                                  std::string_view action,
                                  const absl::Status& status,
                                  const std::vector<std::string>& ids) {
  std::vector<AuditEntry> entries;
  if (!status.ok()) {
    entries.push_back({who.principal, who.on_behalf_of, std::string(action), "",
                       ResultName(status)});
    return entries;
  }
  for (const std::string& id : ids) {
    entries.push_back(
        {who.principal, who.on_behalf_of, std::string(action), id, "OK"});
  }
  return entries;
}

absl::Status AppendAudit(Group& group, std::vector<AuditEntry> entries) {
  audit::ChainHead& head = group.audit_head();
  for (AuditEntry& entry : entries) {
    AuditRecord record;
    record.set_seq(head.next_seq);
    record.set_at_us(
        absl::ToUnixMicros(entry.at.value_or(group.options().clock())));
    record.set_principal(std::move(entry.principal));
    record.set_on_behalf_of(std::move(entry.on_behalf_of));
    record.set_action(std::move(entry.action));
    record.set_referral_id(std::move(entry.referral_id));
    record.set_result(std::move(entry.result));
    record.set_previous_hash(head.last_hash);
    ASSIGN_OR_RETURN(std::string hash, audit::ComputeHash(record));
    record.set_hash(hash);
    rocksdb::Status s =
        group.batch().Put(group.cf(kAudit), audit::AuditKey(record.seq()),
                          record.SerializeAsString());
    if (!s.ok()) return FromRocksStatus(s, "audit");
    head.next_seq = record.seq() + 1;
    head.last_hash = std::move(hash);
  }
  return absl::OkStatus();
}

MutationPtr NewMutation(RecordAccessCommand command, Done<absl::Time> done) {
  const bool action_set = !command.action.empty();
  return MakeMutation<absl::Time>(
      [action_set](Group& group) -> absl::StatusOr<absl::Time> {
        if (!action_set)
          return absl::InvalidArgumentError("action: must be set");
        return group.options().clock();
      },
      std::move(done),
      [command = std::move(command)](const absl::StatusOr<absl::Time>& r) {
        // A read with no action is refused and leaves nothing in the trail.
        if (command.action.empty()) return std::vector<AuditEntry>();
        AuditEntry entry{command.principal, command.on_behalf_of,
                         command.action, command.referral_id, command.result};
        if (r.ok()) entry.at = *r;
        return std::vector<AuditEntry>{std::move(entry)};
      });
}

// --- Reading the trail. ------------------------------------------------------

namespace {

constexpr int kMaxAuditExport = 100000;

// An iterator over the whole trail as of the last group commit, with the
// snapshot it reads (released after the iterator).
struct TrailReader {
  std::shared_ptr<const rocksdb::Snapshot> snapshot;
  std::unique_ptr<rocksdb::Iterator> it;
};

TrailReader ReadTrail(ReferralStore& store) {
  ReferralStoreImpl& impl = ReferralStoreImpl::Of(store);
  TrailReader trail{impl.CurrentSnapshot(), nullptr};
  rocksdb::ReadOptions read;
  read.snapshot = trail.snapshot.get();
  read.fill_cache = false;
  trail.it.reset(impl.core().db->NewIterator(read, impl.core().cf(kAudit)));
  return trail;
}

}  // namespace

absl::StatusOr<std::vector<AuditRecord>> ExportAudit(ReferralStore& store,
                                                     absl::Time from,
                                                     absl::Time to, int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit: must be positive");
  if (from > to) return absl::InvalidArgumentError("from: after to");
  limit = std::min(limit, kMaxAuditExport);
  const int64_t from_us = absl::ToUnixMicros(from);
  const int64_t to_us = absl::ToUnixMicros(to);
  // Keys are in sequence order, not time order (a clock may step back), so
  // the whole trail is scanned: exports are rare admin reads.
  std::vector<AuditRecord> records;
  TrailReader trail = ReadTrail(store);
  rocksdb::Iterator* it = trail.it.get();
  for (it->SeekToFirst();
       it->Valid() && records.size() < static_cast<size_t>(limit); it->Next()) {
    AuditRecord record;
    if (!record.ParseFromArray(it->value().data(),
                               static_cast<int>(it->value().size()))) {
      return absl::DataLossError("audit: a record is unreadable");
    }
    if (record.at_us() < from_us || record.at_us() > to_us) continue;
    records.push_back(std::move(record));
  }
  if (!it->status().ok()) return FromRocksStatus(it->status(), "audit read");
  return records;
}

absl::StatusOr<AuditVerification> VerifyAudit(ReferralStore& store) {
  AuditVerification result;
  uint64_t expected_seq = 1;
  std::string previous_hash;
  auto bad = [&](uint64_t seq, std::string problem) {
    result.intact = false;
    result.first_bad_seq = seq;
    result.problem = std::move(problem);
    return result;
  };
  TrailReader trail = ReadTrail(store);
  rocksdb::Iterator* it = trail.it.get();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::optional<uint64_t> seq =
        audit::DecodeAuditKey(it->key().ToStringView());
    if (!seq) return bad(expected_seq, "unreadable audit key");
    // A removed record leaves a gap (or, when renumbered, a previous_hash
    // that no longer matches).
    if (*seq != expected_seq) {
      return bad(expected_seq,
                 absl::StrCat("record ", expected_seq, " is missing"));
    }
    AuditRecord record;
    if (!record.ParseFromArray(it->value().data(),
                               static_cast<int>(it->value().size()))) {
      return bad(*seq, "unreadable record");
    }
    if (record.seq() != *seq) {
      return bad(*seq, "record sequence does not match its key");
    }
    if (record.previous_hash() != previous_hash) {
      return bad(*seq, "previous hash does not match the record before");
    }
    ASSIGN_OR_RETURN(std::string hash, audit::ComputeHash(record));
    if (hash != record.hash()) {
      return bad(*seq, "hash does not match the record (edited)");
    }
    ++result.records_checked;
    ++expected_seq;
    previous_hash = record.hash();
  }
  if (!it->status().ok()) return FromRocksStatus(it->status(), "audit read");
  // A truncated tail (the newest records removed) is not detectable here:
  // what remains is a whole chain. Compare the head with a copy kept
  // elsewhere to catch that.
  return result;
}

}  // namespace referral::storage
