// Intake validation of a SubmitReferralRequest against the contract in
// proto/referral/v1/referral.proto and broker.proto (limits, required
// fields, code lists) and the identifier and date rules of the domain notes,
// plus the normal form a referral is stored in.
//
// Validation reports every problem at once, each as "field.path: reason", so
// an agency can fix a referral in one round trip. Reasons never quote the
// offending value: it may be personal data and error messages end up in logs.
#ifndef REFERRAL_SERVER_REFERRAL_VALIDATOR_H_
#define REFERRAL_SERVER_REFERRAL_VALIDATOR_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "referral/v1/broker.pb.h"
#include "referral/v1/referral.pb.h"

namespace referral::server {

// OK, or INVALID_ARGUMENT listing every violation with its field path (e.g.
// "referral.children[1].nhs_number: check digit is wrong"). `now` decides
// "today" for date rules, taken as the civil date in Europe/London.
//
// Format checks (NHS number, UPN, postcode, CIN codes) are applied to the
// value as NormaliseReferral will store it (surrounding whitespace trimmed,
// spaces in NHS numbers removed); byte limits and UTF-8 validity apply to
// the value as sent.
absl::Status ValidateSubmitReferralRequest(
    const referral::v1::SubmitReferralRequest& request, absl::Time now);

// Brings a validated referral into its stored form: surrounding whitespace
// trimmed from every string, spaces removed from NHS numbers, postcodes in
// upper case with a single space. Apply after validation succeeds, so that
// equal referrals compare equal (idempotency) and identifiers match.
void NormaliseReferral(referral::v1::Referral* referral);

// A CalendarDate with all three parts zero is "not given" (proto3 cannot
// tell an unset message from a zero one once it has been copied around).
bool IsCalendarDateAbsent(const referral::v1::CalendarDate& date);

// The date as a civil day, or nullopt when it is absent, outside the years
// 1900..2200 or not a real date (e.g. 2026-02-30).
std::optional<absl::CivilDay> CalendarDateToCivilDay(
    const referral::v1::CalendarDate& date);

}  // namespace referral::server

#endif  // REFERRAL_SERVER_REFERRAL_VALIDATOR_H_
