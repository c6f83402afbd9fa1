#include "services/referral_views.h"

#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"

namespace referral::server {
namespace {

// "AGENCY_TYPE_POLICE" -> "police": the enum's own bounded set of values.
std::string EnumLabel(const std::string& enum_value_name,
                      absl::string_view prefix) {
  std::string label = enum_value_name;
  if (absl::StartsWith(label, prefix)) label.erase(0, prefix.size());
  absl::AsciiStrToLower(&label);
  return label;
}

}  // namespace

std::string AgencyTypeLabel(v1::AgencyType type) {
  return EnumLabel(v1::AgencyType_Name(type), "AGENCY_TYPE_");
}

std::string DecisionLabel(v1::Decision decision) {
  return EnumLabel(v1::Decision_Name(decision), "DECISION_");
}
namespace {

using storage::StoredReferral;

// Ages are counted in the front door's civil time, not UTC: a child born on
// a date is a year older from local midnight.
const absl::TimeZone& LondonTimeZone() {
  static const absl::TimeZone* zone = [] {
    auto* tz = new absl::TimeZone;
    if (!absl::LoadTimeZone("Europe/London", tz)) *tz = absl::UTCTimeZone();
    return tz;
  }();
  return *zone;
}

// The first character (a whole UTF-8 sequence) of a name, upper-cased when
// it is ASCII.
std::string Initial(std::string_view name) {
  size_t start = name.find_first_not_of(" \t");
  if (start == std::string_view::npos) return "";
  unsigned char lead = static_cast<unsigned char>(name[start]);
  size_t length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  std::string out(name.substr(start, length));
  if (length == 1) out[0] = static_cast<char>(std::toupper(lead));
  return out;
}

int AgeInYears(const v1::CalendarDate& birth, absl::Time now) {
  absl::CivilDay today = absl::ToCivilDay(now, LondonTimeZone());
  int age = static_cast<int>(today.year() - birth.year());
  if (today.month() < birth.month() ||
      (today.month() == birth.month() && today.day() < birth.day())) {
    --age;
  }
  return age < 0 ? 0 : age;
}

bool IsSet(const v1::CalendarDate& date) {
  return date.year() != 0 || date.month() != 0 || date.day() != 0;
}

bool IsOpen(v1::ReferralState state) {
  return state == v1::REFERRAL_STATE_RECEIVED ||
         state == v1::REFERRAL_STATE_QUEUED ||
         state == v1::REFERRAL_STATE_CLAIMED ||
         state == v1::REFERRAL_STATE_DEAD_LETTERED;
}

void AddStageDuration(v1::GetReferralStatusResponse& response,
                      std::string_view stage, int64_t from_us, int64_t to_us,
                      absl::Time now) {
  if (from_us == 0) return;
  auto* entry = response.add_stage_durations();
  entry->set_stage(std::string(stage));
  const bool open = to_us == 0;
  const absl::Time end = open ? now : FromMicros(to_us);
  *entry->mutable_duration() = ToDurationProto(end - FromMicros(from_us));
  entry->set_open(open);
}

}  // namespace

bool IsOverdue(const StoredReferral& record, absl::Time now) {
  if (record.due_at_us() == 0) return false;
  const absl::Time due = FromMicros(record.due_at_us());
  if (IsOpen(record.state())) return now > due;
  return record.decision().decided_at_us() > record.due_at_us();
}

v1::GetReferralStatusResponse ToStatusResponse(const StoredReferral& record,
                                               absl::Time now) {
  v1::GetReferralStatusResponse response;
  response.set_referral_id(record.referral_id());
  response.set_state(record.state());
  response.set_queue(record.queue());
  *response.mutable_history() = record.history();
  *response.mutable_received_at() = MicrosToTimestamp(record.received_at_us());
  if (record.due_at_us() != 0) {
    *response.mutable_due_at() = MicrosToTimestamp(record.due_at_us());
  }
  response.set_overdue(IsOverdue(record, now));
  response.set_delivery_attempts(record.delivery_attempts());
  response.set_priority_band(record.band());
  response.set_referrer_reference(record.referral().referrer_reference());
  const int64_t decided_us = record.decision().decided_at_us();
  if (decided_us != 0) {
    response.set_decision(record.decision().decision());
    *response.mutable_decided_at() = MicrosToTimestamp(decided_us);
  }
  AddStageDuration(response, "queued", record.received_at_us(),
                   record.queued_at_us(), now);
  AddStageDuration(response, "awaiting_claim", record.queued_at_us(),
                   record.first_claimed_at_us(), now);
  AddStageDuration(response, "in_triage", record.first_claimed_at_us(),
                   decided_us, now);
  AddStageDuration(response, "awaiting_ack", decided_us,
                   record.outcome_acknowledged_at_us(), now);
  if (record.outcome_acknowledged_at_us() != 0) {
    *response.mutable_time_to_feedback() =
        ToDurationProto(FromMicros(record.outcome_acknowledged_at_us()) -
                        FromMicros(record.received_at_us()));
  }
  return response;
}

v1::QueueEntry ToQueueEntry(const StoredReferral& record, absl::Time now) {
  v1::QueueEntry entry;
  const v1::Referral& referral = record.referral();
  entry.set_referral_id(record.referral_id());
  entry.set_priority_band(record.band());
  *entry.mutable_received_at() = MicrosToTimestamp(record.received_at_us());
  if (record.due_at_us() != 0) {
    *entry.mutable_due_at() = MicrosToTimestamp(record.due_at_us());
  }
  entry.set_agency_type(referral.referrer().agency_type());
  for (int concern : referral.concerns()) {
    entry.add_concerns(static_cast<v1::ConcernCategory>(concern));
  }
  entry.set_immediate_risk(referral.immediate_risk());
  entry.set_repeated_concern(record.repeated_concern());
  entry.set_delivery_attempts(record.delivery_attempts());
  for (const v1::Child& child : referral.children()) {
    auto* summary = entry.add_children();
    summary->set_initials(Initial(child.given_name()) +
                          Initial(child.family_name()));
    summary->set_age_years(IsSet(child.date_of_birth())
                               ? AgeInYears(child.date_of_birth(), now)
                               : -1);
  }
  entry.set_child_voice_missing(referral.child_voice().words().empty());
  return entry;
}

v1::Outcome ToOutcome(const StoredReferral& record) {
  v1::Outcome outcome;
  outcome.set_referral_id(record.referral_id());
  outcome.set_referrer_reference(record.referral().referrer_reference());
  outcome.set_decision(record.decision().decision());
  *outcome.mutable_received_at() = MicrosToTimestamp(record.received_at_us());
  *outcome.mutable_decided_at() =
      MicrosToTimestamp(record.decision().decided_at_us());
  outcome.set_feedback(record.decision().feedback());
  return outcome;
}

v1::DeadLetter ToDeadLetter(const StoredReferral& record) {
  v1::DeadLetter dead_letter;
  dead_letter.set_referral_id(record.referral_id());
  dead_letter.set_queue(record.queue());
  dead_letter.set_delivery_attempts(record.delivery_attempts());
  *dead_letter.mutable_dead_lettered_at() =
      MicrosToTimestamp(record.dead_lettered_at_us());
  *dead_letter.mutable_received_at() =
      MicrosToTimestamp(record.received_at_us());
  return dead_letter;
}

v1::Notice ToNotice(const StoredReferral& record, absl::Time now) {
  v1::Notice notice;
  *notice.mutable_entry() = ToQueueEntry(record, now);
  notice.set_state(record.state());
  notice.set_queue(record.queue());
  return notice;
}

v1::ClaimedReferral ToClaimedReferral(const StoredReferral& record,
                                      absl::Time now) {
  v1::ClaimedReferral claimed;
  claimed.set_referral_id(record.referral_id());
  claimed.set_lease_token(record.lease().token());
  claimed.set_delivery_attempt(record.delivery_attempts());
  *claimed.mutable_lease_expires_at() =
      MicrosToTimestamp(record.lease().expires_at_us());
  *claimed.mutable_referral() = record.referral();
  *claimed.mutable_entry() = ToQueueEntry(record, now);
  *claimed.mutable_earlier_referral_counts() = record.earlier_referral_counts();
  return claimed;
}

v1::SubmitReferralResponse ToSubmitResponse(
    const storage::SubmitResult& result) {
  const StoredReferral& record = result.record;
  v1::SubmitReferralResponse response;
  response.set_referral_id(record.referral_id());
  *response.mutable_received_at() = MicrosToTimestamp(record.received_at_us());
  response.set_queue(record.queue());
  response.set_duplicate(result.duplicate);
  *response.mutable_due_at() = MicrosToTimestamp(record.due_at_us());
  response.set_priority_band(record.band());
  *response.mutable_notified_queues() = record.notified_queues();
  response.set_repeated_concern(record.repeated_concern());
  return response;
}

}  // namespace referral::server
