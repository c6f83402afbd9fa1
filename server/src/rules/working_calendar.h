// WorkingCalendar: the front door's working time (local working hours on
// working weekdays, less bank holidays), and arithmetic on it, so statutory
// and local timescales ("within 1 working day", "4 working hours") are
// counted the way the council counts them, across clock changes.
#ifndef REFERRAL_SERVER_WORKING_CALENDAR_H_
#define REFERRAL_SERVER_WORKING_CALENDAR_H_

#include <array>
#include <optional>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "referral/v1/referral.pb.h"
#include "server/v1/broker_config.pb.h"

namespace referral::server {

// Immutable and cheap to copy; safe to share between threads.
//
// Working time on a local date D that is a working day is the interval
// [start, end) where start and end are the first instants at which the
// local clock shows at least the configured start and end times (this only
// matters when a clock change falls inside the working day, which never
// happens with day-time hours in Europe/London). Because hours are local
// wall-clock times, a working day is 09:00-17:00 local on both sides of a
// clock change, and the absolute time between two working days changes.
class WorkingCalendar {
 public:
  // Validates the config; errors are INVALID_ARGUMENT naming the field and
  // the reason, e.g. "bank_holidays[3].date: not a real date", joined with
  // "; ".
  static absl::StatusOr<WorkingCalendar> FromConfig(
      const config::v1::CalendarConfig& config);

  // Parses a CalendarConfig in text format then validates it. Errors are
  // prefixed "<source_name>:<line>:<column>: " for syntax errors and each
  // validation error "<source_name>: ".
  static absl::StatusOr<WorkingCalendar> Parse(std::string_view text,
                                               std::string_view source_name);
  // Parse() on the contents of a file; NOT_FOUND when it cannot be read.
  static absl::StatusOr<WorkingCalendar> LoadFile(std::string_view path);

  // True when `t` is inside working hours on a working day.
  bool IsWorkingTime(absl::Time t) const;

  // True when the local date is a working weekday and not a bank holiday.
  bool IsWorkingDay(absl::CivilDay day) const;

  // The instant at which `working` working time has elapsed since `from`,
  // counting only working time. Ends exactly at the end of a working day
  // rather than at the start of the next one: Friday 18:00 + 8h is Monday
  // 17:00, Monday 14:00 + 8h is Tuesday 14:00. A zero or negative duration
  // returns `from` unchanged; an infinite one returns InfiniteFuture().
  absl::Time AddWorkingTime(absl::Time from, absl::Duration working) const;

  // AddWorkingTime(from, days * working_day_length()): "within N working
  // days" of receipt is the same time of day N working days later.
  absl::Time AddWorkingDays(absl::Time from, int days) const;

  // The working time in [a, b); zero when b <= a.
  absl::Duration WorkingTimeBetween(absl::Time a, absl::Time b) const;

  // Working time in one working day (end minus start on the local clock).
  absl::Duration working_day_length() const {
    return absl::Minutes(end_minute_ - start_minute_);
  }
  const absl::TimeZone& time_zone() const { return time_zone_; }
  // The last listed bank holiday, if any: after it every weekday counts as
  // a working day, so operators should be warned as it approaches.
  std::optional<absl::CivilDay> last_bank_holiday() const {
    return last_bank_holiday_;
  }

 private:
  WorkingCalendar() = default;

  // FromConfig, with each error prefixed "<source_name>: " unless the name
  // is empty.
  static absl::StatusOr<WorkingCalendar> Build(
      const config::v1::CalendarConfig& config, std::string_view source_name);

  // Working time on `day` as [start, end); empty (start == end) on a
  // non-working day.
  struct Interval {
    absl::Time start;
    absl::Time end;
  };
  Interval WorkingInterval(absl::CivilDay day) const;

  absl::TimeZone time_zone_;
  int start_minute_ = 0;  // minutes after local midnight
  int end_minute_ = 0;    // exclusive; up to 24 * 60
  // Indexed by absl::Weekday (monday = 0 ... sunday = 6).
  std::array<bool, 7> working_weekday_{};
  absl::flat_hash_set<absl::CivilDay> bank_holidays_;
  std::optional<absl::CivilDay> last_bank_holiday_;
};

}  // namespace referral::server

#endif  // REFERRAL_SERVER_WORKING_CALENDAR_H_
