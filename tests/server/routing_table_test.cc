// Specification of referral routing: the shipped Peterborough routing table
// rule by rule, how rules combine (first queue wins, notifications
// accumulate, nothing is dropped), due times per queue, and how mistakes in
// a council-edited routing file are reported.
#include "rules/routing_table.h"

#include <algorithm>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rules/working_calendar.h"

namespace referral::server {
namespace {

using ::referral::v1::AGENCY_TYPE_HEALTH_GP;
using ::referral::v1::AGENCY_TYPE_POLICE;
using ::referral::v1::AGENCY_TYPE_SCHOOL;
using ::referral::v1::CONCERN_CATEGORY_CHILD_CRIMINAL_EXPLOITATION;
using ::referral::v1::CONCERN_CATEGORY_GANGS;
using ::referral::v1::CONCERN_CATEGORY_NEGLECT;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kShippedRouting[] =
    REFERRAL_SOURCE_DIR "/server/config/routing.txtpb";
constexpr char kShippedCalendar[] =
    REFERRAL_SOURCE_DIR "/server/config/calendar.txtpb";

// Four queues and no rules, for tests of how rules combine.
constexpr char kQueues[] = R"pb(
  in_area_districts: "PE1"
  queues {
    name: "a"
    due { working_days: 1 }
  }
  queues {
    name: "b"
    due { working_days: 1 }
  }
  queues {
    name: "c"
    due { working_hours: 4 }
  }
  queues {
    name: "exploitation"
    due { working_days: 1 }
  }
  default_queue: "a"
  immediate_risk_due { wall_clock_hours: 4 }
)pb";

// An in-hours, in-area referral with no immediate risk: what most are.
RoutingInput Ordinary() {
  RoutingInput in;
  in.agency_type = AGENCY_TYPE_SCHOOL;
  in.concerns = {CONCERN_CATEGORY_NEGLECT};
  in.immediate_risk = false;
  in.child_postcodes = {"PE1 1XX"};
  in.inside_working_hours = true;
  return in;
}

// kQueues then `rules`, which start on a new line.
std::string WithRules(const std::string& rules) {
  return std::string(kQueues) + "\n" + rules;
}

// "test.txtpb:<line>:<column>: " for line n (1-based) of the rules in
// WithRules(), which follow the lines of kQueues (however it is formatted).
std::string At(int n, int column) {
  const int queue_lines =
      std::count(std::begin(kQueues), std::end(kQueues), '\n');
  return absl::StrCat("test.txtpb:", queue_lines + 1 + n, ":", column, ": ");
}

std::unique_ptr<RoutingTable> MustParse(const std::string& text) {
  absl::StatusOr<std::unique_ptr<RoutingTable>> table =
      RoutingTable::Parse(text, "test.txtpb");
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *std::move(table) : nullptr;
}

std::string ParseError(const std::string& text) {
  absl::StatusOr<std::unique_ptr<RoutingTable>> table =
      RoutingTable::Parse(text, "test.txtpb");
  EXPECT_FALSE(table.ok()) << text;
  if (table.ok()) return "";
  EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(table.status().message());
}

// --- The shipped routing table, rule by rule ------------------------------

class ShippedRoutingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<RoutingTable>> table =
        RoutingTable::LoadFile(kShippedRouting);
    ASSERT_TRUE(table.ok()) << table.status();
    table_ = table->release();
    absl::StatusOr<WorkingCalendar> calendar =
        WorkingCalendar::LoadFile(kShippedCalendar);
    ASSERT_TRUE(calendar.ok()) << calendar.status();
    calendar_ = new WorkingCalendar(*std::move(calendar));
  }
  static void TearDownTestSuite() {
    delete table_;
    delete calendar_;
  }

  static absl::Time London(int y, int mo, int d, int h, int mi = 0) {
    return absl::FromCivil(absl::CivilMinute(y, mo, d, h, mi),
                           calendar_->time_zone());
  }
  static std::string DueLocal(const std::string& queue, bool immediate_risk,
                              absl::Time received) {
    absl::StatusOr<absl::Time> due =
        table_->DueAt(queue, immediate_risk, received, *calendar_);
    EXPECT_TRUE(due.ok()) << due.status();
    if (!due.ok()) return "";
    return absl::FormatTime("%Y-%m-%d %H:%M %Z", *due, calendar_->time_zone());
  }

  static const RoutingTable* table_;
  static const WorkingCalendar* calendar_;
};

const RoutingTable* ShippedRoutingTest::table_ = nullptr;
const WorkingCalendar* ShippedRoutingTest::calendar_ = nullptr;

TEST_F(ShippedRoutingTest, HasTheFourQueues) {
  EXPECT_THAT(table_->queue_names(),
              ElementsAre("ifd-urgent", "ifd-triage", "edt-out-of-hours",
                          "out-of-area"));
}

TEST_F(ShippedRoutingTest, OrdinaryReferralGoesToTriageByDefault) {
  const RouteDecision d = table_->Route(Ordinary());
  EXPECT_EQ(d.queue, "ifd-triage");
  EXPECT_EQ(d.rule, "default");
  EXPECT_THAT(d.notified_queues, IsEmpty());
}

TEST_F(ShippedRoutingTest, ImmediateRiskGoesToUrgent) {
  RoutingInput in = Ordinary();
  in.immediate_risk = true;
  const RouteDecision d = table_->Route(in);
  EXPECT_EQ(d.queue, "ifd-urgent");
  EXPECT_EQ(d.rule, "immediate-risk");
  EXPECT_THAT(d.notified_queues, IsEmpty());
}

TEST_F(ShippedRoutingTest, OutOfHoursAlsoNotifiesTheEmergencyDutyTeam) {
  RoutingInput in = Ordinary();
  in.inside_working_hours = false;
  const RouteDecision d = table_->Route(in);
  EXPECT_EQ(d.queue, "ifd-triage");
  EXPECT_EQ(d.rule, "default");
  EXPECT_THAT(d.notified_queues, ElementsAre("edt-out-of-hours"));
}

TEST_F(ShippedRoutingTest, ImmediateRiskOutOfHoursIsUrgentAndTellsEdt) {
  RoutingInput in = Ordinary();
  in.immediate_risk = true;
  in.inside_working_hours = false;
  const RouteDecision d = table_->Route(in);
  EXPECT_EQ(d.queue, "ifd-urgent");
  EXPECT_EQ(d.rule, "immediate-risk");
  EXPECT_THAT(d.notified_queues, ElementsAre("edt-out-of-hours"));
}

TEST_F(ShippedRoutingTest, ChildrenLivingElsewhereGoOutOfArea) {
  RoutingInput in = Ordinary();
  in.child_postcodes = {"CB1 1AA"};
  const RouteDecision d = table_->Route(in);
  EXPECT_EQ(d.queue, "out-of-area");
  EXPECT_EQ(d.rule, "out-of-area");
}

TEST_F(ShippedRoutingTest, OutOfAreaOutOfHoursAlsoTellsEdt) {
  RoutingInput in = Ordinary();
  in.child_postcodes = {"CB1 1AA"};
  in.inside_working_hours = false;
  const RouteDecision d = table_->Route(in);
  EXPECT_EQ(d.queue, "out-of-area");
  EXPECT_THAT(d.notified_queues, ElementsAre("edt-out-of-hours"));
}

TEST_F(ShippedRoutingTest, ImmediateRiskBeatsOutOfArea) {
  // Protect the child first; a transfer can follow.
  RoutingInput in = Ordinary();
  in.child_postcodes = {"CB1 1AA"};
  in.immediate_risk = true;
  EXPECT_EQ(table_->Route(in).queue, "ifd-urgent");
}

TEST_F(ShippedRoutingTest, OneSiblingInAreaKeepsTheReferral) {
  RoutingInput in = Ordinary();
  in.child_postcodes = {"CB1 1AA", "PE2 5AB"};
  EXPECT_EQ(table_->Route(in).queue, "ifd-triage");
}

TEST_F(ShippedRoutingTest, ChildrenWithoutPostcodesNeverMakeItOutOfArea) {
  RoutingInput in = Ordinary();
  in.child_postcodes = {};
  EXPECT_EQ(table_->Route(in).queue, "ifd-triage");
  in.child_postcodes = {"", ""};
  EXPECT_EQ(table_->Route(in).queue, "ifd-triage");
  // An unborn sibling without a postcode does not keep an out-of-area
  // family here.
  in.child_postcodes = {"", "CB1 1AA"};
  EXPECT_EQ(table_->Route(in).queue, "out-of-area");
}

TEST_F(ShippedRoutingTest, OnlyListedPeDistrictsAreInArea) {
  // The PE area is shared: PE9 (Stamford) and PE10 are other councils', and
  // PE10 must not be mistaken for PE1.
  EXPECT_TRUE(table_->IsInArea("PE1 1XX"));
  EXPECT_TRUE(table_->IsInArea("PE8 6AB"));
  EXPECT_FALSE(table_->IsInArea("PE9 2AA"));
  EXPECT_FALSE(table_->IsInArea("PE10 0AA"));
  EXPECT_FALSE(table_->IsInArea("PE29 1AA"));
  EXPECT_FALSE(table_->IsInArea(""));
  RoutingInput in = Ordinary();
  in.child_postcodes = {"PE10 0AA"};
  EXPECT_EQ(table_->Route(in).queue, "out-of-area");
}

TEST_F(ShippedRoutingTest, DistrictIsFoundWithOrWithoutTheSpace) {
  EXPECT_TRUE(table_->IsInArea("pe1 1xx"));
  EXPECT_TRUE(table_->IsInArea("PE11XX"));
  EXPECT_FALSE(table_->IsInArea("PE101XX"));  // PE10 1XX
}

TEST_F(ShippedRoutingTest, UnrecognisablePostcodeCountsAsUnknown) {
  RoutingInput in = Ordinary();
  in.child_postcodes = {"not a postcode"};
  EXPECT_EQ(table_->Route(in).queue, "ifd-triage");
}

TEST_F(ShippedRoutingTest, NonGeographicPostcodeCountsAsUnknown) {
  // GIR 0AA passes intake's postcode check but names no district, so it is
  // no evidence that the child lives elsewhere.
  RoutingInput in = Ordinary();
  in.child_postcodes = {"GIR 0AA"};
  EXPECT_FALSE(table_->IsInArea("GIR 0AA"));
  EXPECT_EQ(table_->Route(in).queue, "ifd-triage");
  in.child_postcodes = {"GIR 0AA", "CB1 1AA"};
  EXPECT_EQ(table_->Route(in).queue, "out-of-area");
}

// --- Due times on the shipped queues --------------------------------------

TEST_F(ShippedRoutingTest, TriageIsDueInOneWorkingDay) {
  EXPECT_EQ(DueLocal("ifd-triage", false, London(2026, 6, 8, 14)),
            "2026-06-09 14:00 BST");
  EXPECT_EQ(DueLocal("ifd-triage", false, London(2026, 6, 12, 18)),
            "2026-06-15 17:00 BST");
}

TEST_F(ShippedRoutingTest, OutOfAreaAndEdtAreDueInOneWorkingDay) {
  EXPECT_EQ(DueLocal("out-of-area", false, London(2026, 12, 24, 14)),
            "2026-12-29 14:00 GMT");
  EXPECT_EQ(DueLocal("edt-out-of-hours", false, London(2026, 12, 24, 14)),
            "2026-12-29 14:00 GMT");
}

TEST_F(ShippedRoutingTest, UrgentRunsOnTheWallClockOutOfHours) {
  // Friday night: due in the small hours of Saturday, not Monday.
  EXPECT_EQ(DueLocal("ifd-urgent", true, London(2026, 6, 12, 22)),
            "2026-06-13 02:00 BST");
  // On Christmas Day too.
  EXPECT_EQ(DueLocal("ifd-urgent", true, London(2026, 12, 25, 10)),
            "2026-12-25 14:00 GMT");
}

TEST_F(ShippedRoutingTest, ImmediateRiskUsesTheShortClockOnAnyQueue) {
  EXPECT_EQ(DueLocal("out-of-area", true, London(2026, 6, 12, 18)),
            "2026-06-12 22:00 BST");
  EXPECT_EQ(DueLocal("ifd-triage", true, London(2026, 6, 8, 10)),
            "2026-06-08 14:00 BST");
}

TEST_F(ShippedRoutingTest, WallClockHoursAreElapsedHoursAcrossClockChanges) {
  // 4 real hours from 23:00 GMT on Sat 28 Mar 2026 are 04:00 BST.
  EXPECT_EQ(DueLocal("ifd-urgent", true, London(2026, 3, 28, 23)),
            "2026-03-29 04:00 BST");
  // 4 real hours from 23:30 BST on Sat 24 Oct 2026 are 02:30 GMT.
  EXPECT_EQ(DueLocal("ifd-urgent", true, London(2026, 10, 24, 23, 30)),
            "2026-10-25 02:30 GMT");
}

TEST_F(ShippedRoutingTest, UnknownQueueHasNoDueTime) {
  EXPECT_EQ(table_->DueAt("no-such-queue", false, absl::Now(), *calendar_)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

// --- How rules combine ----------------------------------------------------

TEST(RoutingRulesTest, NoMatchingRuleMeansTheDefaultQueue) {
  auto table = MustParse(WithRules(R"pb(
    rules {
      name: "police-only"
      match { agency_types: AGENCY_TYPE_POLICE }
      queue: "b"
    }
  )pb"));
  ASSERT_NE(table, nullptr);
  const RouteDecision d = table->Route(Ordinary());
  EXPECT_EQ(d.queue, "a");
  EXPECT_EQ(d.rule, "default");
}

TEST(RoutingRulesTest, FirstMatchingRuleWithAQueueWins) {
  auto table = MustParse(WithRules(R"pb(
    rules { name: "notify-only" notify: "c" }
    rules {
      name: "first"
      match { agency_types: [ AGENCY_TYPE_POLICE, AGENCY_TYPE_SCHOOL ] }
      queue: "b"
    }
    rules { name: "second" queue: "c" }
  )pb"));
  ASSERT_NE(table, nullptr);
  const RouteDecision d = table->Route(Ordinary());
  EXPECT_EQ(d.queue, "b");
  EXPECT_EQ(d.rule, "first");
}

TEST(RoutingRulesTest, NotificationsAccumulateWithoutRepeatsOrTheWorkQueue) {
  auto table = MustParse(WithRules(R"pb(
    rules {
      name: "one"
      notify: [ "b", "c" ]
    }
    rules { name: "work" queue: "c" notify: "exploitation" }
    rules {
      name: "three"
      notify: [ "b", "exploitation", "a" ]
    }
  )pb"));
  ASSERT_NE(table, nullptr);
  const RouteDecision d = table->Route(Ordinary());
  EXPECT_EQ(d.queue, "c");
  // "c" is the work queue; "b" and "exploitation" are notified once each;
  // notifications from rules after the queue was chosen still count.
  EXPECT_THAT(d.notified_queues, ElementsAre("b", "exploitation", "a"));
}

TEST(RoutingRulesTest, ConditionsAreAndedAndListsAreAnyOf) {
  auto table = MustParse(WithRules(R"pb(
    rules {
      name: "police-exploitation"
      match {
        agency_types: AGENCY_TYPE_POLICE
        concerns: [
          CONCERN_CATEGORY_CHILD_CRIMINAL_EXPLOITATION,
          CONCERN_CATEGORY_GANGS
        ]
      }
      queue: "exploitation"
    }
  )pb"));
  ASSERT_NE(table, nullptr);
  RoutingInput in = Ordinary();
  in.agency_type = AGENCY_TYPE_POLICE;
  in.concerns = {CONCERN_CATEGORY_NEGLECT, CONCERN_CATEGORY_GANGS};
  EXPECT_EQ(table->Route(in).queue, "exploitation");
  in.concerns = {CONCERN_CATEGORY_NEGLECT};  // no listed concern
  EXPECT_EQ(table->Route(in).queue, "a");
  in.agency_type = AGENCY_TYPE_HEALTH_GP;  // wrong agency
  in.concerns = {CONCERN_CATEGORY_CHILD_CRIMINAL_EXPLOITATION};
  EXPECT_EQ(table->Route(in).queue, "a");
}

TEST(RoutingRulesTest, PostcodeInAreaTrueMatchesInAreaAndUnknown) {
  auto table = MustParse(WithRules(R"pb(
    rules {
      name: "local"
      match { postcode_in_area: true }
      queue: "b"
    }
  )pb"));
  ASSERT_NE(table, nullptr);
  RoutingInput in = Ordinary();
  EXPECT_EQ(table->Route(in).queue, "b");
  in.child_postcodes = {""};
  EXPECT_EQ(table->Route(in).queue, "b");
  in.child_postcodes = {"CB1 1AA"};
  EXPECT_EQ(table->Route(in).queue, "a");
}

TEST(RoutingRulesTest, WorkingHoursDuePolicyCountsWorkingHours) {
  auto table = MustParse(kQueues);
  ASSERT_NE(table, nullptr);
  absl::StatusOr<WorkingCalendar> calendar =
      WorkingCalendar::LoadFile(kShippedCalendar);
  ASSERT_TRUE(calendar.ok()) << calendar.status();
  const absl::Time friday_4pm = absl::FromCivil(
      absl::CivilMinute(2026, 6, 12, 16, 0), calendar->time_zone());
  absl::StatusOr<absl::Time> due =
      table->DueAt("c", false, friday_4pm, *calendar);
  ASSERT_TRUE(due.ok()) << due.status();
  EXPECT_EQ(*due, absl::FromCivil(absl::CivilMinute(2026, 6, 15, 12, 0),
                                  calendar->time_zone()));
  // Immediate risk: the earlier of the queue's clock and 4 wall-clock hours.
  due = table->DueAt("c", true, friday_4pm, *calendar);
  ASSERT_TRUE(due.ok()) << due.status();
  EXPECT_EQ(*due, friday_4pm + absl::Hours(4));
}

// --- Reporting mistakes in the file ---------------------------------------

TEST(RoutingConfigErrorsTest, SyntaxErrorGivesLineAndColumn) {
  const std::string message = ParseError(
      "default_queue: \"a\"\n"
      "queues {\n"
      "  name \"a\"\n"
      "}\n");
  EXPECT_THAT(message, StartsWith("test.txtpb:3:8: "));
}

TEST(RoutingConfigErrorsTest, UnknownFieldIsASyntaxError) {
  const std::string message = ParseError(
      "default_queue: \"a\"\n"
      "queue { name: \"a\" }\n");
  // A misspelt field name is caught here rather than silently ignored.
  EXPECT_THAT(message, StartsWith("test.txtpb:2:"));
  EXPECT_THAT(message, HasSubstr("no field named \"queue\""));
}

TEST(RoutingConfigErrorsTest, UnknownQueueInARuleReportsItsLine) {
  const std::string message =
      ParseError(WithRules("rules {\n"
                           "  name: \"r\"\n"
                           "  queue: \"nope\"\n"
                           "}\n"));
  EXPECT_THAT(message,
              HasSubstr(At(3, 3) + "rules[0].queue: unknown queue \"nope\""));
}

TEST(RoutingConfigErrorsTest, UnknownNotifyQueueReportsItsLine) {
  const std::string message =
      ParseError(WithRules("rules {\n"
                           "  name: \"r\"\n"
                           "  notify: \"a\"\n"
                           "  notify: \"nope\"\n"
                           "}\n"));
  EXPECT_THAT(message, HasSubstr(At(4, 3) +
                                 "rules[0].notify[1]: unknown queue \"nope\""));
}

TEST(RoutingConfigErrorsTest, UnknownQueueInAListReportsItsLine) {
  const std::string message =
      ParseError(WithRules("rules {\n"
                           "  name: \"r\"\n"
                           "  notify: [\n"
                           "    \"a\",\n"
                           "    \"nope\"\n"
                           "  ]\n"
                           "}\n"));
  EXPECT_THAT(message, HasSubstr("rules[0].notify[1]: unknown queue \"nope\""));
  // Protobuf records one location for a list literal: its field name.
  EXPECT_THAT(message, HasSubstr(At(3, 3)));
}

TEST(RoutingConfigErrorsTest, UnknownDefaultQueueReportsItsLine) {
  const std::string message = ParseError(
      "queues {\n"
      "  name: \"a\"\n"
      "  due { working_days: 1 }\n"
      "}\n"
      "default_queue: \"b\"\n"
      "immediate_risk_due { wall_clock_hours: 4 }\n");
  EXPECT_THAT(message,
              HasSubstr("test.txtpb:5:1: default_queue: unknown queue \"b\""));
}

TEST(RoutingConfigErrorsTest, MissingDefaultQueueIsReported) {
  const std::string message = ParseError(
      "queues {\n"
      "  name: \"a\"\n"
      "  due { working_days: 1 }\n"
      "}\n"
      "immediate_risk_due { wall_clock_hours: 4 }\n");
  EXPECT_THAT(message, HasSubstr("test.txtpb: default_queue: required"));
}

TEST(RoutingConfigErrorsTest, DuplicateQueueNameReportsTheSecond) {
  const std::string message = ParseError(
      "queues {\n"
      "  name: \"a\"\n"
      "  due { working_days: 1 }\n"
      "}\n"
      "queues {\n"
      "  name: \"a\"\n"
      "  due { working_days: 2 }\n"
      "}\n"
      "default_queue: \"a\"\n"
      "immediate_risk_due { wall_clock_hours: 4 }\n");
  EXPECT_THAT(message, HasSubstr("test.txtpb:6:3: queues[1].name: duplicate "
                                 "queue name \"a\""));
}

TEST(RoutingConfigErrorsTest, BadQueueNameReportsItsLine) {
  const std::string message = ParseError(
      "default_queue: \"Triage Queue\"\n"
      "queues {\n"
      "  name: \"Triage Queue\"\n"
      "  due { working_days: 1 }\n"
      "}\n"
      "immediate_risk_due { wall_clock_hours: 4 }\n");
  EXPECT_THAT(message, HasSubstr("test.txtpb:3:3: queues[0].name: must be"));
}

TEST(RoutingConfigErrorsTest, QueueWithoutDuePolicyIsReported) {
  const std::string message = ParseError(
      "default_queue: \"a\"\n"
      "queues {\n"
      "  name: \"a\"\n"
      "}\n"
      "queues {\n"
      "  name: \"b\"\n"
      "  due { working_days: 0 }\n"
      "}\n"
      "immediate_risk_due { wall_clock_hours: 4 }\n");
  EXPECT_THAT(message, HasSubstr("test.txtpb:2:1: queues[0].due: required"));
  EXPECT_THAT(message, HasSubstr("test.txtpb:7:9: queues[1].due.working_days: "
                                 "must be from 1 to 366"));
}

TEST(RoutingConfigErrorsTest, RuleWithNoActionReportsTheRule) {
  const std::string message =
      ParseError(WithRules("rules {\n"
                           "  name: \"idle\"\n"
                           "  match { immediate_risk: true }\n"
                           "}\n"));
  EXPECT_THAT(message, HasSubstr(At(1, 1) + "rules[0]: has no action"));
}

TEST(RoutingConfigErrorsTest, BadOrRepeatedRuleNamesAreReported) {
  const std::string message =
      ParseError(WithRules("rules { name: \"default\" queue: \"a\" }\n"
                           "rules { name: \"x\" queue: \"a\" }\n"
                           "rules { name: \"x\" queue: \"b\" }\n"));
  EXPECT_THAT(message, HasSubstr(At(1, 9) + "rules[0].name: must be"));
  EXPECT_THAT(message,
              HasSubstr(At(3, 9) + "rules[2].name: duplicate rule name \"x\""));
}

TEST(RoutingConfigErrorsTest, BadPostcodeDistrictReportsItsLine) {
  const std::string message = ParseError(
      "in_area_districts: \"PE1\"\n"
      "in_area_districts: \"PE1 1XX\"\n"
      "in_area_districts: \"QE1\"\n"
      "in_area_districts: \"pe1\"\n"
      "queues { name: \"a\" due { working_days: 1 } }\n"
      "default_queue: \"a\"\n"
      "immediate_risk_due { wall_clock_hours: 4 }\n");
  EXPECT_THAT(message,
              HasSubstr("test.txtpb:2:1: in_area_districts[1]: not a postcode "
                        "district"));
  EXPECT_THAT(message, HasSubstr("test.txtpb:3:1: in_area_districts[2]: not"));
  EXPECT_THAT(message, HasSubstr("test.txtpb:4:1: in_area_districts[3]: PE1 is "
                                 "listed more than once"));
}

TEST(RoutingConfigErrorsTest, PostcodeRuleNeedsDistricts) {
  const std::string message = ParseError(
      "queues { name: \"a\" due { working_days: 1 } }\n"
      "default_queue: \"a\"\n"
      "immediate_risk_due { wall_clock_hours: 4 }\n"
      "rules {\n"
      "  name: \"away\"\n"
      "  match { postcode_in_area: false }\n"
      "  queue: \"a\"\n"
      "}\n");
  EXPECT_THAT(message, HasSubstr("test.txtpb:6:11: rules[0].match."
                                 "postcode_in_area: needs in_area_districts"));
}

TEST(RoutingConfigErrorsTest, UnspecifiedAgencyTypeCanNeverMatch) {
  const std::string message =
      ParseError(WithRules("rules {\n"
                           "  name: \"r\"\n"
                           "  match { agency_types: AGENCY_TYPE_UNSPECIFIED }\n"
                           "  queue: \"b\"\n"
                           "}\n"));
  EXPECT_THAT(message,
              HasSubstr(At(3, 11) + "rules[0].match.agency_types[0]: must be a "
                                    "specified"));
}

TEST(RoutingConfigErrorsTest, UnspecifiedConcernCanNeverMatch) {
  const std::string message =
      ParseError(WithRules("rules {\n"
                           "  name: \"r\"\n"
                           "  match { concerns: [ CONCERN_CATEGORY_NEGLECT, "
                           "CONCERN_CATEGORY_UNSPECIFIED ] }\n"
                           "  queue: \"b\"\n"
                           "}\n"));
  // Both values of the list literal are placed at its field name.
  EXPECT_THAT(message,
              HasSubstr(At(3, 11) + "rules[0].match.concerns[1]: must be a "
                                    "specified concern category"));
  EXPECT_THAT(message, Not(HasSubstr("concerns[0]")));
}

TEST(RoutingConfigErrorsTest, ImmediateRiskClockIsRequired) {
  const std::string message = ParseError(
      "queues { name: \"a\" due { working_days: 1 } }\n"
      "default_queue: \"a\"\n");
  EXPECT_THAT(message, HasSubstr("test.txtpb: immediate_risk_due: required"));
}

TEST(RoutingConfigErrorsTest, EveryProblemIsReportedAtOnce) {
  const std::string message = ParseError(
      "queues { name: \"a\" }\n"
      "default_queue: \"z\"\n");
  EXPECT_THAT(message, HasSubstr("queues[0].due: required"));
  EXPECT_THAT(message, HasSubstr("default_queue: unknown queue"));
  EXPECT_THAT(message, HasSubstr("immediate_risk_due: required"));
}

TEST(RoutingConfigErrorsTest, MissingFileIsNotFound) {
  EXPECT_EQ(
      RoutingTable::LoadFile("/nonexistent/routing.txtpb").status().code(),
      absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace referral::server
