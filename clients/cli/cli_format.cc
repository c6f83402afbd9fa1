#include "cli_format.h"

#include <google/protobuf/util/json_util.h>

#include <iterator>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "base/timestamps.h"
#include "decision_names.h"

namespace referral::clients {
namespace {

bool IsSafeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
         c == '@' || c == '/' || c == '+' || c == '-' || c == ',' || c == '?';
}

std::string Bool(bool b) { return b ? "true" : "false"; }

std::string Str(absl::string_view s) { return s.empty() ? "-" : QuoteValue(s); }

}  // namespace

std::string FormatTimestamp(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return FormatUtcSeconds(FromTimestamp(t));
}

std::string FormatDuration(const google::protobuf::Duration& d) {
  return absl::FormatDuration(
      absl::Trunc(FromDurationProto(d), absl::Milliseconds(1)));
}

std::string QuoteValue(absl::string_view value) {
  if (value.empty()) return "-";
  bool safe = value != "-";
  for (char c : value) {
    if (!IsSafeChar(c)) {
      safe = false;
      break;
    }
  }
  if (safe) return std::string(value);
  // Escapes quotes, backslashes and control bytes so one value can never
  // break the line; UTF-8 text stays readable.
  return absl::StrCat("\"", absl::Utf8SafeCEscape(value), "\"");
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes < 0 ? 0 : bytes, "B");
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  // 1023.95 MiB would print as "1024.0MiB": move up a unit first.
  while (value >= 1023.95 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f%s", value, kUnits[unit]);
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  options.add_whitespace = false;
  std::string out;
  const auto status =
      google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    return absl::StrCat("{\"error\":\"cannot print ",
                        message.GetDescriptor()->full_name(), " as JSON\"}");
  }
  return out;
}

std::string SubmitLine(const referral::v1::SubmitReferralResponse& r,
                       absl::string_view idempotency_key) {
  std::vector<std::string> notified(r.notified_queues().begin(),
                                    r.notified_queues().end());
  return absl::StrCat(
      "submitted ", r.referral_id(), " queue=", Str(r.queue()),
      " duplicate=", Bool(r.duplicate()),
      " priority=", ShortName(r.priority_band()),
      " due=", FormatTimestamp(r.due_at()),
      " received=", FormatTimestamp(r.received_at()),
      " repeated_concern=", Bool(r.repeated_concern()),
      " notified=", notified.empty() ? "-" : absl::StrJoin(notified, ","),
      " idempotency_key=", Str(idempotency_key));
}

std::string StatusLines(const referral::v1::GetReferralStatusResponse& s) {
  const bool decided = s.decision() != referral::v1::DECISION_UNSPECIFIED;
  std::string out = absl::StrCat(
      "referral ", s.referral_id(), " state=", ShortName(s.state()),
      " queue=", Str(s.queue()), " priority=", ShortName(s.priority_band()),
      " received=", FormatTimestamp(s.received_at()),
      " due=", FormatTimestamp(s.due_at()), " overdue=", Bool(s.overdue()),
      " attempts=", s.delivery_attempts(),
      " decision=", decided ? ShortName(s.decision()) : "-",
      " decided=", FormatTimestamp(s.decided_at()),
      " reference=", Str(s.referrer_reference()));
  for (const referral::v1::AcknowledgementEvent& e : s.history()) {
    absl::StrAppend(
        &out, "\nhistory ", s.referral_id(), " stage=", ShortName(e.stage()),
        " at=", FormatTimestamp(e.at()), " actor=", Str(e.actor()),
        " queue=", Str(e.queue()), " attempt=", e.delivery_attempt(),
        " detail=", Str(e.detail()));
  }
  for (const referral::v1::StageDuration& d : s.stage_durations()) {
    absl::StrAppend(
        &out, "\nduration ", s.referral_id(), " stage=", Str(d.stage()),
        " time=", FormatDuration(d.duration()), " open=", Bool(d.open()));
  }
  return out;
}

std::string OutcomeLine(const referral::v1::Outcome& o) {
  return absl::StrCat("outcome ", o.referral_id(),
                      " decision=", ShortName(o.decision()),
                      " decided=", FormatTimestamp(o.decided_at()),
                      " received=", FormatTimestamp(o.received_at()),
                      " reference=", Str(o.referrer_reference()),
                      " feedback=", Str(o.feedback()));
}

std::string AckLine(absl::string_view referral_id,
                    const referral::v1::AcknowledgeOutcomeResponse& r) {
  return absl::StrCat("acknowledged ", referral_id,
                      " at=", FormatTimestamp(r.acknowledged_at()),
                      " already_acknowledged=", Bool(r.already_acknowledged()));
}

std::string QueueEntryLine(const referral::v1::QueueEntry& e) {
  std::vector<std::string> concerns;
  for (int c : e.concerns()) {
    concerns.push_back(
        EnumShortName(referral::v1::ConcernCategory_descriptor(), c));
  }
  // Initials and age only, as the broker sends them: never full names.
  std::vector<std::string> children;
  for (const referral::v1::ChildSummary& child : e.children()) {
    children.push_back(absl::StrCat(
        child.initials().empty() ? "?" : child.initials(), ":",
        child.age_years() < 0 ? "unborn" : absl::StrCat(child.age_years())));
  }
  return absl::StrCat(
      "entry ", e.referral_id(), " priority=", ShortName(e.priority_band()),
      " received=", FormatTimestamp(e.received_at()),
      " due=", FormatTimestamp(e.due_at()),
      " agency=", ShortName(e.agency_type()),
      " concerns=", concerns.empty() ? "-" : absl::StrJoin(concerns, ","),
      " immediate_risk=", Bool(e.immediate_risk()),
      " repeated_concern=", Bool(e.repeated_concern()),
      " attempts=", e.delivery_attempts(), " children=",
      children.empty() ? "-" : QuoteValue(absl::StrJoin(children, ",")),
      " child_voice_missing=", Bool(e.child_voice_missing()));
}

std::string ClaimLine(const referral::v1::ClaimedReferral& c) {
  return absl::StrCat("claimed ", c.referral_id(),
                      " token=", Str(c.lease_token()),
                      " attempt=", c.delivery_attempt(),
                      " lease_expires=", FormatTimestamp(c.lease_expires_at()),
                      " priority=", ShortName(c.entry().priority_band()),
                      " due=", FormatTimestamp(c.entry().due_at()),
                      " linked=", c.history_size());
}

std::string ExtendLine(absl::string_view referral_id,
                       const referral::v1::ExtendClaimResponse& r) {
  return absl::StrCat("extended ", referral_id,
                      " lease_expires=", FormatTimestamp(r.lease_expires_at()));
}

std::string ReleaseLine(absl::string_view referral_id,
                        const referral::v1::ReleaseReferralResponse& r) {
  return absl::StrCat("released ", referral_id,
                      " state=", ShortName(r.state()));
}

std::string DecideLine(absl::string_view referral_id,
                       referral::v1::Decision decision,
                       const referral::v1::RecordDecisionResponse& r) {
  return absl::StrCat(
      "decided ", referral_id, " decision=", ShortName(decision),
      " state=", ShortName(r.state()), " at=", FormatTimestamp(r.decided_at()));
}

std::string EventLine(const referral::v1::QueueEvent& e) {
  return absl::StrCat(FormatTimestamp(e.at()), " ", ShortName(e.kind()), " ",
                      Str(e.referral_id()), " queue=", Str(e.queue()),
                      " priority=", ShortName(e.priority_band()),
                      " due=", FormatTimestamp(e.due_at()),
                      " worker=", Str(e.worker()));
}

std::string DeadLetterLine(const referral::v1::DeadLetter& d) {
  return absl::StrCat("dead-letter ", d.referral_id(),
                      " queue=", Str(d.queue()),
                      " attempts=", d.delivery_attempts(),
                      " dead_lettered=", FormatTimestamp(d.dead_lettered_at()),
                      " received=", FormatTimestamp(d.received_at()));
}

std::string RequeueLine(absl::string_view referral_id,
                        const referral::v1::RequeueDeadLetterResponse& r) {
  return absl::StrCat("requeued ", referral_id, " queue=", Str(r.queue()),
                      " state=", ShortName(r.state()));
}

namespace {

std::string BackupFields(const referral::v1::Backup& backup) {
  return absl::StrCat("created=", FormatTimestamp(backup.created_at()),
                      " size=", FormatBytes(backup.size_bytes()),
                      " files=", backup.file_count());
}

}  // namespace

std::string BackupLine(const referral::v1::Backup& backup) {
  return absl::StrCat("backup ", backup.backup_id(), " ", BackupFields(backup));
}

std::string VerifiedBackupLine(const referral::v1::Backup& backup) {
  return absl::StrCat("backup ", backup.backup_id(),
                      " verified: ", BackupFields(backup));
}

}  // namespace referral::clients
