// Specification of the working calendar: what counts as working time and
// how timescales ("within 1 working day", "4 working hours") are counted,
// on the shipped Europe/London calendar, across weekends, bank holidays and
// both clock changes.
#include "rules/working_calendar.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace referral::server {
namespace {

using ::testing::HasSubstr;

constexpr char kShippedCalendar[] =
    REFERRAL_SOURCE_DIR "/server/config/calendar.txtpb";

class WorkingCalendarTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<WorkingCalendar> calendar =
        WorkingCalendar::LoadFile(kShippedCalendar);
    ASSERT_TRUE(calendar.ok()) << calendar.status();
    calendar_ = new WorkingCalendar(*std::move(calendar));
  }
  static void TearDownTestSuite() {
    delete calendar_;
    calendar_ = nullptr;
  }

  // A local wall-clock time in London.
  static absl::Time London(int y, int mo, int d, int h, int mi = 0) {
    return absl::FromCivil(absl::CivilMinute(y, mo, d, h, mi),
                           calendar_->time_zone());
  }
  static absl::Time Utc(int y, int mo, int d, int h, int mi = 0) {
    return absl::FromCivil(absl::CivilMinute(y, mo, d, h, mi),
                           absl::UTCTimeZone());
  }
  // Due time of N working days, written as local time for readable
  // failures.
  static std::string LocalDue(absl::Time from, int days) {
    return absl::FormatTime("%Y-%m-%d %H:%M %Z",
                            calendar_->AddWorkingDays(from, days),
                            calendar_->time_zone());
  }
  static std::string Local(absl::Time t) {
    return absl::FormatTime("%Y-%m-%d %H:%M %Z", t, calendar_->time_zone());
  }

  static const WorkingCalendar* calendar_;
};

const WorkingCalendar* WorkingCalendarTest::calendar_ = nullptr;

// --- The shipped calendar -------------------------------------------------

TEST_F(WorkingCalendarTest, ShippedCalendarIsLondonNineToFiveMondayToFriday) {
  EXPECT_EQ(calendar_->time_zone().name(), "Europe/London");
  EXPECT_EQ(calendar_->working_day_length(), absl::Hours(8));
  EXPECT_TRUE(calendar_->IsWorkingDay(absl::CivilDay(2026, 6, 8)));    // Mon
  EXPECT_TRUE(calendar_->IsWorkingDay(absl::CivilDay(2026, 6, 12)));   // Fri
  EXPECT_FALSE(calendar_->IsWorkingDay(absl::CivilDay(2026, 6, 13)));  // Sat
  EXPECT_FALSE(calendar_->IsWorkingDay(absl::CivilDay(2026, 6, 14)));  // Sun
}

TEST_F(WorkingCalendarTest, ShippedCalendarListsEnglandAndWalesBankHolidays) {
  const char* const holidays[] = {
      "2025-01-01", "2025-04-18", "2025-04-21", "2025-05-05", "2025-05-26",
      "2025-08-25", "2025-12-25", "2025-12-26", "2026-01-01", "2026-04-03",
      "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31", "2026-12-25",
      "2026-12-28", "2027-01-01", "2027-03-26", "2027-03-29", "2027-05-03",
      "2027-05-31", "2027-08-30", "2027-12-27", "2027-12-28", "2028-01-03",
  };
  for (const char* date : holidays) {
    absl::CivilDay day;
    ASSERT_TRUE(absl::ParseCivilTime(date, &day)) << date;
    EXPECT_FALSE(calendar_->IsWorkingDay(day)) << day;
    // Each is a weekday, so listing it is what closes the front door.
    EXPECT_LT(absl::GetWeekday(day), absl::Weekday::saturday) << day;
  }
  EXPECT_EQ(calendar_->last_bank_holiday(), absl::CivilDay(2028, 1, 3));
  // An ordinary day between them still works.
  EXPECT_TRUE(calendar_->IsWorkingDay(absl::CivilDay(2026, 12, 29)));
}

// --- What is working time -------------------------------------------------

TEST_F(WorkingCalendarTest, WorkingHoursIncludeTheStartAndExcludeTheEnd) {
  EXPECT_FALSE(calendar_->IsWorkingTime(London(2026, 6, 8, 8, 59)));
  EXPECT_TRUE(calendar_->IsWorkingTime(London(2026, 6, 8, 9, 0)));
  EXPECT_TRUE(calendar_->IsWorkingTime(London(2026, 6, 8, 16, 59)));
  EXPECT_TRUE(calendar_->IsWorkingTime(London(2026, 6, 8, 17, 0) -
                                       absl::Nanoseconds(1)));
  EXPECT_FALSE(calendar_->IsWorkingTime(London(2026, 6, 8, 17, 0)));
}

TEST_F(WorkingCalendarTest, WeekendsAndBankHolidaysAreNeverWorkingTime) {
  EXPECT_FALSE(calendar_->IsWorkingTime(London(2026, 6, 13, 11)));   // Sat
  EXPECT_FALSE(calendar_->IsWorkingTime(London(2026, 12, 25, 11)));  // Xmas
  EXPECT_FALSE(calendar_->IsWorkingTime(London(2026, 12, 28, 11)));  // subst.
  EXPECT_FALSE(calendar_->IsWorkingTime(London(2026, 4, 3, 11)));    // Good Fri
  EXPECT_FALSE(calendar_->IsWorkingTime(London(2026, 4, 6, 11)));    // Easter M
}

// --- Adding working time --------------------------------------------------

TEST_F(WorkingCalendarTest, EightWorkingHoursFromMondayAfternoonIsTuesday) {
  EXPECT_EQ(calendar_->AddWorkingTime(London(2026, 6, 8, 14), absl::Hours(8)),
            London(2026, 6, 9, 14));
}

TEST_F(WorkingCalendarTest, FromFridayEveningTheClockStartsMondayMorning) {
  // Work that fills Monday is due at Monday's close, not Tuesday 09:00.
  EXPECT_EQ(calendar_->AddWorkingTime(London(2026, 6, 12, 18), absl::Hours(8)),
            London(2026, 6, 15, 17));
}

TEST_F(WorkingCalendarTest, ReceiptExactlyAtStartOfDayCountsFromThen) {
  EXPECT_EQ(calendar_->AddWorkingTime(London(2026, 6, 8, 9), absl::Hours(8)),
            London(2026, 6, 8, 17));
  EXPECT_EQ(calendar_->AddWorkingTime(London(2026, 6, 8, 9), absl::Hours(1)),
            London(2026, 6, 8, 10));
}

TEST_F(WorkingCalendarTest, ReceiptExactlyAtEndOfDayCountsFromNextMorning) {
  EXPECT_EQ(calendar_->AddWorkingTime(London(2026, 6, 8, 17), absl::Hours(1)),
            London(2026, 6, 9, 10));
  EXPECT_EQ(LocalDue(London(2026, 6, 8, 17), 1), "2026-06-09 17:00 BST");
}

TEST_F(WorkingCalendarTest, ReceiptBeforeOpeningCountsFromOpening) {
  EXPECT_EQ(calendar_->AddWorkingTime(London(2026, 6, 8, 7), absl::Hours(1)),
            London(2026, 6, 8, 10));
}

TEST_F(WorkingCalendarTest, ZeroWorkingTimeLeavesTheTimeUnchanged) {
  EXPECT_EQ(
      calendar_->AddWorkingTime(London(2026, 6, 13, 3), absl::ZeroDuration()),
      London(2026, 6, 13, 3));
}

TEST_F(WorkingCalendarTest, WorkingDaysKeepTheTimeOfDay) {
  EXPECT_EQ(LocalDue(London(2026, 6, 8, 14), 1), "2026-06-09 14:00 BST");
  EXPECT_EQ(LocalDue(London(2026, 6, 8, 14), 3), "2026-06-11 14:00 BST");
  EXPECT_EQ(LocalDue(London(2026, 6, 12, 14), 1), "2026-06-15 14:00 BST");
}

// --- Bank holidays --------------------------------------------------------

TEST_F(WorkingCalendarTest, ReceiptOnChristmasDayWaitsForTheSubstituteDay) {
  // Fri 25 Dec 2026 is Christmas and Mon 28 Dec the Boxing Day substitute:
  // the first working time is Tuesday 29 December.
  EXPECT_EQ(LocalDue(London(2026, 12, 25, 10), 1), "2026-12-29 17:00 GMT");
  EXPECT_EQ(LocalDue(London(2026, 12, 28, 10), 1), "2026-12-29 17:00 GMT");
}

TEST_F(WorkingCalendarTest, ChristmasEveAfternoonIsDueAfterChristmas) {
  // Thu 24 Dec 14:00-17:00 is 3 hours; the other 5 are on Tue 29 Dec.
  EXPECT_EQ(LocalDue(London(2026, 12, 24, 14), 1), "2026-12-29 14:00 GMT");
}

TEST_F(WorkingCalendarTest, NewYearsEveAfternoonIsDueTheNextMonday) {
  // Fri 1 Jan 2027 is New Year's Day, then the weekend.
  EXPECT_EQ(LocalDue(London(2026, 12, 31, 14), 1), "2027-01-04 14:00 GMT");
}

TEST_F(WorkingCalendarTest, ChristmasToNewYearHasThreeWorkingDays) {
  // 29, 30 and 31 December 2026 only.
  EXPECT_EQ(calendar_->WorkingTimeBetween(London(2026, 12, 24, 17),
                                          London(2027, 1, 4, 9)),
            absl::Hours(24));
  EXPECT_EQ(LocalDue(London(2026, 12, 24, 17), 3), "2026-12-31 17:00 GMT");
  EXPECT_EQ(LocalDue(London(2026, 12, 24, 17), 4), "2027-01-04 17:00 GMT");
}

TEST_F(WorkingCalendarTest, EasterSkipsGoodFridayAndEasterMonday) {
  // Thu 2 Apr 2026 14:00 + 1 working day: 3 Apr (Good Friday), the weekend
  // and 6 Apr (Easter Monday) are closed.
  EXPECT_EQ(LocalDue(London(2026, 4, 2, 14), 1), "2026-04-07 14:00 BST");
  EXPECT_EQ(LocalDue(London(2026, 4, 3, 10), 1), "2026-04-07 17:00 BST");
}

// --- Clock changes --------------------------------------------------------

TEST_F(WorkingCalendarTest, SpringForwardKeepsNineToFiveLocal) {
  // Clocks go forward on Sun 29 Mar 2026: Monday opens at 09:00 BST, which
  // is 08:00 UTC, whereas the Friday before opened at 09:00 UTC.
  EXPECT_FALSE(calendar_->IsWorkingTime(Utc(2026, 3, 30, 7, 59)));
  EXPECT_TRUE(calendar_->IsWorkingTime(Utc(2026, 3, 30, 8, 0)));
  EXPECT_FALSE(calendar_->IsWorkingTime(Utc(2026, 3, 30, 16, 0)));
  EXPECT_TRUE(calendar_->IsWorkingTime(Utc(2026, 3, 27, 16, 59)));
}

TEST_F(WorkingCalendarTest, SpringForwardWorkingDayIsSameLocalTime) {
  const absl::Time friday = London(2026, 3, 27, 14);
  const absl::Time due = calendar_->AddWorkingDays(friday, 1);
  EXPECT_EQ(Local(due), "2026-03-30 14:00 BST");
  // The weekend lost an hour of wall-clock time.
  EXPECT_EQ(due - friday, absl::Hours(71));
  EXPECT_EQ(calendar_->WorkingTimeBetween(friday, due), absl::Hours(8));
}

TEST_F(WorkingCalendarTest, FallBackKeepsNineToFiveLocal) {
  // Clocks go back on Sun 25 Oct 2026: Monday opens at 09:00 GMT.
  EXPECT_FALSE(calendar_->IsWorkingTime(Utc(2026, 10, 26, 8, 30)));
  EXPECT_TRUE(calendar_->IsWorkingTime(Utc(2026, 10, 26, 9, 0)));
  EXPECT_TRUE(calendar_->IsWorkingTime(Utc(2026, 10, 26, 16, 30)));
  EXPECT_FALSE(calendar_->IsWorkingTime(Utc(2026, 10, 23, 16, 30)));  // BST
}

TEST_F(WorkingCalendarTest, FallBackWorkingDayIsSameLocalTime) {
  const absl::Time friday = London(2026, 10, 23, 14);
  const absl::Time due = calendar_->AddWorkingDays(friday, 1);
  EXPECT_EQ(Local(due), "2026-10-26 14:00 GMT");
  EXPECT_EQ(due - friday, absl::Hours(73));
  EXPECT_EQ(calendar_->WorkingTimeBetween(friday, due), absl::Hours(8));
}

TEST_F(WorkingCalendarTest, ReceiptDuringTheRepeatedHourIsNotWorkingTime) {
  // 01:30 happens twice on 25 Oct 2026; both are out of hours on a Sunday.
  const absl::TimeZone::TimeInfo repeated =
      calendar_->time_zone().At(absl::CivilSecond(2026, 10, 25, 1, 30, 0));
  ASSERT_EQ(repeated.kind, absl::TimeZone::TimeInfo::REPEATED);
  EXPECT_FALSE(calendar_->IsWorkingTime(repeated.pre));
  EXPECT_FALSE(calendar_->IsWorkingTime(repeated.post));
  EXPECT_EQ(Local(calendar_->AddWorkingDays(repeated.post, 1)),
            "2026-10-26 17:00 GMT");
}

// --- Working time between two instants ------------------------------------

TEST_F(WorkingCalendarTest, WorkingTimeBetweenCountsOnlyWorkingHours) {
  EXPECT_EQ(calendar_->WorkingTimeBetween(London(2026, 6, 12, 16),
                                          London(2026, 6, 15, 10)),
            absl::Hours(2));
  EXPECT_EQ(calendar_->WorkingTimeBetween(London(2026, 6, 13, 0),
                                          London(2026, 6, 14, 23)),
            absl::ZeroDuration());
  EXPECT_EQ(calendar_->WorkingTimeBetween(London(2026, 6, 9, 10),
                                          London(2026, 6, 8, 10)),
            absl::ZeroDuration());
}

TEST_F(WorkingCalendarTest, AddingThenMeasuringGivesBackTheWorkingTime) {
  // Every half hour through a year with both clock changes and the holidays.
  for (absl::Time from = London(2026, 1, 1, 0); from < London(2027, 1, 8, 0);
       from += absl::Minutes(30)) {
    const absl::Time due = calendar_->AddWorkingDays(from, 1);
    ASSERT_EQ(calendar_->WorkingTimeBetween(from, due), absl::Hours(8))
        << Local(from);
  }
}

TEST_F(WorkingCalendarTest, FortyFiveWorkingDayAssessment) {
  // Received at opening, the 45th working day (counting the day of
  // receipt) ends the clock. From Mon 15 Feb 2027 it runs past Good Friday
  // and Easter Monday (26 and 29 Mar) and the clock change (28 Mar).
  EXPECT_EQ(LocalDue(London(2027, 1, 4, 9), 45), "2027-03-05 17:00 GMT");
  EXPECT_EQ(LocalDue(London(2027, 2, 15, 9), 45), "2027-04-20 17:00 BST");
}

// --- Configuration --------------------------------------------------------

TEST(WorkingCalendarConfigTest, EmptyConfigMeansLondonNineToFiveWeekdays) {
  absl::StatusOr<WorkingCalendar> calendar =
      WorkingCalendar::FromConfig(config::v1::CalendarConfig());
  ASSERT_TRUE(calendar.ok()) << calendar.status();
  EXPECT_EQ(calendar->time_zone().name(), "Europe/London");
  EXPECT_EQ(calendar->working_day_length(), absl::Hours(8));
  EXPECT_TRUE(calendar->IsWorkingDay(absl::CivilDay(2026, 12, 25)));
  EXPECT_FALSE(calendar->IsWorkingDay(absl::CivilDay(2026, 12, 26)));
}

TEST(WorkingCalendarConfigTest, ErrorsNameTheFieldAndReason) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const Case cases[] =
      {
          {R"pb(time_zone: "Europe/Londres")pb",
           "time_zone: unknown time zone"},
          {R"pb(working_day_start: "9:00")pb", "working_day_start: must be"},
          {R"pb(working_day_end: "17:60")pb", "working_day_end: must be"},
          {R"pb(working_day_start: "17:00" working_day_end: "09:00")pb",
           "working_day_end: must be after working_day_start"},
          {R"pb(working_weekdays: WEEKDAY_MONDAY
                working_weekdays: WEEKDAY_MONDAY)pb",
           "working_weekdays[1]: listed more than once"},
          {R"pb(working_weekdays: WEEKDAY_UNSPECIFIED)pb",
           "working_weekdays[0]: must be WEEKDAY_MONDAY"},
          {R"pb(bank_holidays { date: "2026-02-30" })pb",
           "bank_holidays[0].date: must be a real date"},
          {R"pb(bank_holidays { date: "25/12/2026" })pb",
           "bank_holidays[0].date: must be a real date"},
          {R"pb(bank_holidays { date: "2026-12-25" }
                bank_holidays { date: "2026-12-25" })pb",
           "bank_holidays[1].date: 2026-12-25 is listed more than once"},
      };
  for (const Case& c : cases) {
    absl::StatusOr<WorkingCalendar> calendar =
        WorkingCalendar::Parse(c.text, "cal.txtpb");
    ASSERT_FALSE(calendar.ok()) << c.text;
    EXPECT_EQ(calendar.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(calendar.status().message()),
                HasSubstr("cal.txtpb: " + c.expected));
  }
}

TEST(WorkingCalendarConfigTest, SyntaxErrorsGiveLineAndColumn) {
  absl::StatusOr<WorkingCalendar> calendar = WorkingCalendar::Parse(
      "time_zone: \"Europe/London\"\nworking_day_start \"09:00\"\n",
      "cal.txtpb");
  ASSERT_FALSE(calendar.ok());
  EXPECT_THAT(std::string(calendar.status().message()),
              HasSubstr("cal.txtpb:2:19: "));
}

TEST(WorkingCalendarConfigTest, MissingFileIsNotFound) {
  EXPECT_EQ(
      WorkingCalendar::LoadFile("/nonexistent/calendar.txtpb").status().code(),
      absl::StatusCode::kNotFound);
}

TEST(WorkingCalendarConfigTest, AllHoursCalendarCountsElapsedTimeAcrossDst) {
  // A 24/7 service: working time is elapsed time, even on the 23-hour day.
  absl::StatusOr<WorkingCalendar> calendar = WorkingCalendar::Parse(
      R"pb(
        working_day_start: "00:00"
        working_day_end: "24:00"
        working_weekdays: [
          WEEKDAY_MONDAY,
          WEEKDAY_TUESDAY,
          WEEKDAY_WEDNESDAY,
          WEEKDAY_THURSDAY,
          WEEKDAY_FRIDAY,
          WEEKDAY_SATURDAY,
          WEEKDAY_SUNDAY
        ]
      )pb",
      "all-hours");
  ASSERT_TRUE(calendar.ok()) << calendar.status();
  const absl::Time saturday_noon = absl::FromCivil(
      absl::CivilMinute(2026, 3, 28, 12, 0), calendar->time_zone());
  EXPECT_EQ(calendar->AddWorkingTime(saturday_noon, absl::Hours(24)),
            saturday_noon + absl::Hours(24));
  EXPECT_EQ(calendar->WorkingTimeBetween(saturday_noon,
                                         saturday_noon + absl::Hours(48)),
            absl::Hours(48));
  EXPECT_TRUE(calendar->IsWorkingTime(saturday_noon));
}

}  // namespace
}  // namespace referral::server
