// How referral_cli shows broker responses. Human output is one line per
// item: a leading word saying what the line is, the referral id, then
// key=value pairs in a fixed order, so that it reads well and stays
// greppable across versions ("submitted REF-2026-000001 queue=ifd-triage
// ..."). Empty values show as "-"; free text is double-quoted with C
// escapes when it holds anything but [A-Za-z0-9._:@/+,?-]. Machine output is
// the response as one line of protobuf JSON with the proto field names.
#ifndef REFERRAL_CLIENTS_CLI_FORMAT_H_
#define REFERRAL_CLIENTS_CLI_FORMAT_H_

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "referral/v1/broker.pb.h"
#include "referral/v1/referral.pb.h"

namespace referral::clients {

// RFC 3339 in UTC to the second ("2026-01-05T09:30:00Z"); "-" when unset.
std::string FormatTimestamp(const google::protobuf::Timestamp& t);
// Rounded to milliseconds, e.g. "1.25s", "2h3m0.5s".
std::string FormatDuration(const google::protobuf::Duration& d);
// As described above: "-" for empty, bare when safe, else quoted.
std::string QuoteValue(absl::string_view value);
// A size in binary units with one decimal and no space, so that it stays
// one key=value token: "512B", "1.0KiB", "12.3MiB", "4.2GiB".
std::string FormatBytes(int64_t bytes);

// One line of JSON, proto field names, fields at their default included
// (so scripts can rely on every key being present). No trailing newline.
std::string ToJson(const google::protobuf::Message& message);

// The lines below carry no trailing newline.
std::string SubmitLine(const referral::v1::SubmitReferralResponse& response,
                       absl::string_view idempotency_key);
// Several lines: "referral ...", then one "history ..." per event and one
// "duration ..." per stage.
std::string StatusLines(const referral::v1::GetReferralStatusResponse& status);
std::string OutcomeLine(const referral::v1::Outcome& outcome);
std::string AckLine(absl::string_view referral_id,
                    const referral::v1::AcknowledgeOutcomeResponse& response);
std::string QueueEntryLine(const referral::v1::QueueEntry& entry);
std::string ClaimLine(const referral::v1::ClaimedReferral& claim);
std::string ExtendLine(absl::string_view referral_id,
                       const referral::v1::ExtendClaimResponse& response);
std::string ReleaseLine(absl::string_view referral_id,
                        const referral::v1::ReleaseReferralResponse& response);
std::string DecideLine(absl::string_view referral_id,
                       referral::v1::Decision decision,
                       const referral::v1::RecordDecisionResponse& response);
// "<at> <kind> <referral_id> queue=... priority=... due=... worker=...".
std::string EventLine(const referral::v1::QueueEvent& event);
std::string DeadLetterLine(const referral::v1::DeadLetter& dead_letter);
// "backup <id> created=<RFC 3339> size=<FormatBytes> files=<n>".
std::string BackupLine(const referral::v1::Backup& backup);
// "backup <id> verified: created=... size=... files=<n>".
std::string VerifiedBackupLine(const referral::v1::Backup& backup);
std::string RequeueLine(
    absl::string_view referral_id,
    const referral::v1::RequeueDeadLetterResponse& response);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_CLI_FORMAT_H_
