#include "rules/working_calendar.h"

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "settings/text_config.h"

namespace referral::server {
namespace {

constexpr std::string_view kDefaultTimeZone = "Europe/London";
constexpr std::string_view kDefaultStart = "09:00";
constexpr std::string_view kDefaultEnd = "17:00";
constexpr int kMinutesPerDay = 24 * 60;

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

int ToInt(std::string_view digits) {
  int n = 0;
  for (char c : digits) n = n * 10 + (c - '0');
  return n;
}

// "HH:MM" to minutes after midnight, 00:00..24:00; -1 when malformed. Only
// the exact form is accepted so that "9:00" or "09.00" typos are reported
// rather than guessed at.
int ParseClockMinutes(std::string_view s) {
  if (s.size() != 5 || s[2] != ':' || !AllDigits(s.substr(0, 2)) ||
      !AllDigits(s.substr(3, 2))) {
    return -1;
  }
  const int hours = ToInt(s.substr(0, 2));
  const int minutes = ToInt(s.substr(3, 2));
  if (minutes > 59 || hours > 24 || (hours == 24 && minutes != 0)) return -1;
  return hours * 60 + minutes;
}

// "YYYY-MM-DD" that names a real date; absl::CivilDay would silently
// normalise 2026-02-30 to 2026-03-02, hiding the typo.
std::optional<absl::CivilDay> ParseDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-' ||
      !AllDigits(s.substr(0, 4)) || !AllDigits(s.substr(5, 2)) ||
      !AllDigits(s.substr(8, 2))) {
    return std::nullopt;
  }
  const int year = ToInt(s.substr(0, 4));
  const int month = ToInt(s.substr(5, 2));
  const int day = ToInt(s.substr(8, 2));
  const absl::CivilDay civil(year, month, day);
  if (year < 1900 || year > 2200 || civil.month() != month ||
      civil.day() != day) {
    return std::nullopt;
  }
  return civil;
}

}  // namespace

absl::StatusOr<WorkingCalendar> WorkingCalendar::FromConfig(
    const config::v1::CalendarConfig& config) {
  return Build(config, /*source_name=*/"");
}

absl::StatusOr<WorkingCalendar> WorkingCalendar::Build(
    const config::v1::CalendarConfig& config, std::string_view source_name) {
  // Errors name the field but not its line, as Parse() documents: a config
  // from FromConfig has no text to point into.
  ConfigErrors errors(source_name);
  const ConfigLocation nowhere;
  WorkingCalendar calendar;

  const std::string zone_name = config.time_zone().empty()
                                    ? std::string(kDefaultTimeZone)
                                    : config.time_zone();
  if (!absl::LoadTimeZone(zone_name, &calendar.time_zone_)) {
    errors.Add(nowhere, "time_zone",
               absl::StrCat("unknown time zone \"", zone_name,
                            "\" (an IANA name such as Europe/London; is "
                            "tzdata installed?)"));
  }

  const std::string_view start_text = config.working_day_start().empty()
                                          ? kDefaultStart
                                          : config.working_day_start();
  const std::string_view end_text =
      config.working_day_end().empty() ? kDefaultEnd : config.working_day_end();
  calendar.start_minute_ = ParseClockMinutes(start_text);
  calendar.end_minute_ = ParseClockMinutes(end_text);
  if (calendar.start_minute_ < 0 || calendar.start_minute_ >= kMinutesPerDay) {
    errors.Add(nowhere, "working_day_start",
               "must be \"HH:MM\" from 00:00 to 23:59");
  }
  if (calendar.end_minute_ < 0) {
    errors.Add(nowhere, "working_day_end",
               "must be \"HH:MM\" from 00:00 to 24:00");
  }
  if (calendar.start_minute_ >= 0 && calendar.end_minute_ >= 0 &&
      calendar.end_minute_ <= calendar.start_minute_) {
    errors.Add(nowhere, "working_day_end", "must be after working_day_start");
  }

  if (config.working_weekdays().empty()) {
    for (int d = 0; d < 5; ++d) calendar.working_weekday_[d] = true;
  }
  for (int i = 0; i < config.working_weekdays_size(); ++i) {
    const std::string path = absl::StrCat("working_weekdays[", i, "]");
    const int day = config.working_weekdays(i);
    if (day < config::v1::WEEKDAY_MONDAY || day > config::v1::WEEKDAY_SUNDAY) {
      errors.Add(nowhere, path, "must be WEEKDAY_MONDAY to WEEKDAY_SUNDAY");
      continue;
    }
    // Weekday enum is 1-based from Monday; absl::Weekday 0-based.
    bool& slot = calendar.working_weekday_[day - 1];
    if (slot) errors.Add(nowhere, path, "listed more than once");
    slot = true;
  }

  for (int i = 0; i < config.bank_holidays_size(); ++i) {
    const std::string path = absl::StrCat("bank_holidays[", i, "].date");
    const std::string& text = config.bank_holidays(i).date();
    const std::optional<absl::CivilDay> day = ParseDate(text);
    if (!day.has_value()) {
      errors.Add(nowhere, path, "must be a real date written YYYY-MM-DD");
      continue;
    }
    if (!calendar.bank_holidays_.insert(*day).second) {
      errors.Add(nowhere, path,
                 absl::StrCat(text, " is listed more than once"));
    }
    if (!calendar.last_bank_holiday_.has_value() ||
        *calendar.last_bank_holiday_ < *day) {
      calendar.last_bank_holiday_ = *day;
    }
  }

  if (!errors.empty()) return errors.ToStatus();
  return calendar;
}

absl::StatusOr<WorkingCalendar> WorkingCalendar::Parse(
    std::string_view text, std::string_view source_name) {
  config::v1::CalendarConfig config;
  if (absl::Status parsed = ParseTextConfig(text, source_name, &config);
      !parsed.ok()) {
    return parsed;
  }
  return Build(config, source_name);
}

absl::StatusOr<WorkingCalendar> WorkingCalendar::LoadFile(
    std::string_view path) {
  absl::StatusOr<std::string> text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

bool WorkingCalendar::IsWorkingDay(absl::CivilDay day) const {
  return working_weekday_[static_cast<int>(absl::GetWeekday(day))] &&
         !bank_holidays_.contains(day);
}

WorkingCalendar::Interval WorkingCalendar::WorkingInterval(
    absl::CivilDay day) const {
  if (!IsWorkingDay(day)) {
    const absl::Time midnight = absl::FromCivil(day, time_zone_);
    return {midnight, midnight};
  }
  // FromCivil maps a time the clock skips to the moment of the change and a
  // repeated time to its first occurrence: the first instant the local
  // clock shows at least that time, which is what "opens at 09:00" means.
  const absl::CivilMinute midnight(day);
  return {absl::FromCivil(midnight + start_minute_, time_zone_),
          absl::FromCivil(midnight + end_minute_, time_zone_)};
}

bool WorkingCalendar::IsWorkingTime(absl::Time t) const {
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast()) return false;
  const Interval interval = WorkingInterval(absl::ToCivilDay(t, time_zone_));
  return interval.start <= t && t < interval.end;
}

absl::Time WorkingCalendar::AddWorkingTime(absl::Time from,
                                           absl::Duration working) const {
  if (working <= absl::ZeroDuration()) return from;
  if (working == absl::InfiniteDuration() || from == absl::InfiniteFuture()) {
    return absl::InfiniteFuture();
  }
  if (from == absl::InfinitePast()) return absl::InfinitePast();
  absl::Duration remaining = working;
  // Walks forward one local date at a time; at least one weekday works and
  // bank holidays are finite, so this ends after about 1.4 days per working
  // day asked for.
  for (absl::CivilDay day = absl::ToCivilDay(from, time_zone_);; ++day) {
    const Interval interval = WorkingInterval(day);
    if (from >= interval.end) continue;
    const absl::Time begin = std::max(from, interval.start);
    const absl::Duration available = interval.end - begin;
    // "<=" so that work that fills the rest of a day is due at its close,
    // not at the next day's opening.
    if (remaining <= available) return begin + remaining;
    remaining -= available;
  }
}

absl::Time WorkingCalendar::AddWorkingDays(absl::Time from, int days) const {
  return AddWorkingTime(from, days * working_day_length());
}

absl::Duration WorkingCalendar::WorkingTimeBetween(absl::Time a,
                                                   absl::Time b) const {
  if (b <= a) return absl::ZeroDuration();
  if (a == absl::InfinitePast() || b == absl::InfiniteFuture()) {
    return absl::InfiniteDuration();
  }
  absl::Duration total = absl::ZeroDuration();
  const absl::CivilDay last = absl::ToCivilDay(b, time_zone_);
  for (absl::CivilDay day = absl::ToCivilDay(a, time_zone_); day <= last;
       ++day) {
    const Interval interval = WorkingInterval(day);
    const absl::Time begin = std::max(a, interval.start);
    const absl::Time end = std::min(b, interval.end);
    if (begin < end) total += end - begin;
  }
  return total;
}

}  // namespace referral::server
