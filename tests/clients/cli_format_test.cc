// The CLI's human lines: stable keys and order, "-" for empty, quoting of
// free text so one value can never break a line; and JSON output.
#include "cli_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace referral::clients {
namespace {

using ::testing::HasSubstr;

google::protobuf::Timestamp At(int64_t seconds) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  return t;
}

constexpr int64_t kJan5 = 1767605400;  // 2026-01-05T09:30:00Z

TEST(FormatTest, TimestampsAndDurations) {
  EXPECT_EQ(FormatTimestamp(At(kJan5)), "2026-01-05T09:30:00Z");
  EXPECT_EQ(FormatTimestamp(google::protobuf::Timestamp()), "-");
  google::protobuf::Duration d;
  d.set_seconds(3723);
  d.set_nanos(500000000);
  EXPECT_EQ(FormatDuration(d), "1h2m3.5s");
  d.set_seconds(0);
  d.set_nanos(1234567);
  EXPECT_EQ(FormatDuration(d), "1ms");
}

TEST(FormatTest, BytesInBinaryUnitsAsOneToken) {
  EXPECT_EQ(FormatBytes(0), "0B");
  EXPECT_EQ(FormatBytes(1023), "1023B");
  EXPECT_EQ(FormatBytes(1024), "1.0KiB");
  EXPECT_EQ(FormatBytes(1536), "1.5KiB");
  EXPECT_EQ(FormatBytes(12'897'485), "12.3MiB");
  // Never "1024.0MiB": rounding up moves to the next unit.
  EXPECT_EQ(FormatBytes(1024LL * 1024 * 1024 - 1), "1.0GiB");
  EXPECT_EQ(FormatBytes(4'509'715'660), "4.2GiB");
  EXPECT_EQ(FormatBytes(3LL << 50), "3.0PiB");
  EXPECT_EQ(FormatBytes(-5), "0B");
}

TEST(FormatTest, BackupLines) {
  v1::Backup backup;
  backup.set_backup_id(7);
  *backup.mutable_created_at() = At(kJan5);
  backup.set_size_bytes(12'897'485);
  backup.set_file_count(14);
  EXPECT_EQ(BackupLine(backup),
            "backup 7 created=2026-01-05T09:30:00Z size=12.3MiB files=14");
  EXPECT_EQ(VerifiedBackupLine(backup),
            "backup 7 verified: created=2026-01-05T09:30:00Z size=12.3MiB "
            "files=14");
}

TEST(FormatTest, QuoteValue) {
  EXPECT_EQ(QuoteValue(""), "-");
  EXPECT_EQ(QuoteValue("-"), "\"-\"");
  EXPECT_EQ(QuoteValue("agency:cambs-police"), "agency:cambs-police");
  EXPECT_EQ(QuoteValue("two words"), "\"two words\"");
  EXPECT_EQ(QuoteValue("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
  EXPECT_EQ(QuoteValue("caf\xC3\xA9"), "\"caf\xC3\xA9\"");
}

TEST(FormatTest, SubmitLine) {
  v1::SubmitReferralResponse r;
  r.set_referral_id("REF-2026-000001");
  r.set_queue("ifd-triage");
  *r.mutable_due_at() = At(kJan5 + 86400);
  *r.mutable_received_at() = At(kJan5);
  r.set_priority_band(v1::PRIORITY_BAND_STANDARD);
  EXPECT_EQ(SubmitLine(r, "key-1"),
            "submitted REF-2026-000001 queue=ifd-triage duplicate=false "
            "priority=standard due=2026-01-06T09:30:00Z "
            "received=2026-01-05T09:30:00Z repeated_concern=false notified=- "
            "idempotency_key=key-1");
  r.add_notified_queues("edt");
  r.add_notified_queues("mash");
  r.set_duplicate(true);
  EXPECT_THAT(SubmitLine(r, "k"),
              HasSubstr("duplicate=true priority=standard"));
  EXPECT_THAT(SubmitLine(r, "k"), HasSubstr("notified=edt,mash "));
}

TEST(FormatTest, StatusLines) {
  v1::GetReferralStatusResponse s;
  s.set_referral_id("REF-1");
  s.set_state(v1::REFERRAL_STATE_DECIDED);
  s.set_queue("ifd-triage");
  s.set_priority_band(v1::PRIORITY_BAND_IMMEDIATE_RISK);
  *s.mutable_received_at() = At(kJan5);
  s.set_delivery_attempts(1);
  s.set_decision(v1::DECISION_STRATEGY_DISCUSSION);
  *s.mutable_decided_at() = At(kJan5 + 60);
  s.set_referrer_reference("CC/123 A");
  auto* h = s.add_history();
  h->set_stage(v1::STAGE_RELEASED);
  *h->mutable_at() = At(kJan5 + 30);
  h->set_actor("triage:alice");
  h->set_detail("needs police check");
  h->set_delivery_attempt(1);
  auto* d = s.add_stage_durations();
  d->set_stage("in_triage");
  d->mutable_duration()->set_seconds(30);
  EXPECT_EQ(StatusLines(s),
            "referral REF-1 state=decided queue=ifd-triage "
            "priority=immediate-risk received=2026-01-05T09:30:00Z due=- "
            "overdue=false attempts=1 decision=strategy-discussion "
            "decided=2026-01-05T09:31:00Z reference=\"CC/123 A\"\n"
            "history REF-1 stage=released at=2026-01-05T09:30:30Z "
            "actor=triage:alice queue=- attempt=1 "
            "detail=\"needs police check\"\n"
            "duration REF-1 stage=in_triage time=30s open=false");
}

TEST(FormatTest, QueueEntryShowsInitialsNotNames) {
  v1::QueueEntry e;
  e.set_referral_id("REF-2");
  e.set_priority_band(v1::PRIORITY_BAND_RAISED);
  e.set_agency_type(v1::AGENCY_TYPE_SCHOOL);
  e.add_concerns(v1::CONCERN_CATEGORY_NEGLECT);
  e.add_concerns(v1::CONCERN_CATEGORY_GOING_MISSING);
  auto* c = e.add_children();
  c->set_initials("CS");
  c->set_age_years(8);
  c = e.add_children();
  c->set_age_years(-1);
  e.set_repeated_concern(true);
  EXPECT_EQ(QueueEntryLine(e),
            "entry REF-2 priority=raised received=- due=- agency=school "
            "concerns=neglect,going-missing immediate_risk=false "
            "repeated_concern=true attempts=0 children=CS:8,?:unborn "
            "child_voice_missing=false");
}

TEST(FormatTest, TriageAndOpsLines) {
  v1::ClaimedReferral c;
  c.set_referral_id("REF-3");
  c.set_lease_token("tok");
  c.set_delivery_attempt(2);
  *c.mutable_lease_expires_at() = At(kJan5);
  c.add_history();
  EXPECT_EQ(ClaimLine(c),
            "claimed REF-3 token=tok attempt=2 "
            "lease_expires=2026-01-05T09:30:00Z priority=unspecified due=- "
            "linked=1");

  v1::RecordDecisionResponse decided;
  decided.set_state(v1::REFERRAL_STATE_DECIDED);
  *decided.mutable_decided_at() = At(kJan5);
  EXPECT_EQ(DecideLine("REF-3", v1::DECISION_EARLY_HELP, decided),
            "decided REF-3 decision=early-help state=decided "
            "at=2026-01-05T09:30:00Z");

  v1::ReleaseReferralResponse released;
  released.set_state(v1::REFERRAL_STATE_DEAD_LETTERED);
  EXPECT_EQ(ReleaseLine("REF-3", released),
            "released REF-3 state=dead-lettered");

  v1::QueueEvent event;
  event.set_kind(v1::QueueEvent::KIND_CLAIMED);
  event.set_queue("ifd-triage");
  event.set_referral_id("REF-3");
  *event.mutable_at() = At(kJan5);
  event.set_worker("alice");
  EXPECT_EQ(EventLine(event),
            "2026-01-05T09:30:00Z claimed REF-3 queue=ifd-triage "
            "priority=unspecified due=- worker=alice");

  v1::Outcome o;
  o.set_referral_id("REF-3");
  o.set_decision(v1::DECISION_NO_FURTHER_ACTION);
  o.set_feedback("Thanks; no action.");
  EXPECT_EQ(OutcomeLine(o),
            "outcome REF-3 decision=no-further-action decided=- received=- "
            "reference=- feedback=\"Thanks; no action.\"");

  v1::AcknowledgeOutcomeResponse ack;
  ack.set_already_acknowledged(true);
  EXPECT_EQ(AckLine("REF-3", ack),
            "acknowledged REF-3 at=- already_acknowledged=true");

  v1::DeadLetter dl;
  dl.set_referral_id("REF-4");
  dl.set_queue("q");
  dl.set_delivery_attempts(5);
  EXPECT_EQ(DeadLetterLine(dl),
            "dead-letter REF-4 queue=q attempts=5 dead_lettered=- received=-");

  v1::RequeueDeadLetterResponse requeued;
  requeued.set_queue("q");
  requeued.set_state(v1::REFERRAL_STATE_QUEUED);
  EXPECT_EQ(RequeueLine("REF-4", requeued),
            "requeued REF-4 queue=q state=queued");

  v1::ExtendClaimResponse extended;
  *extended.mutable_lease_expires_at() = At(kJan5);
  EXPECT_EQ(ExtendLine("REF-3", extended),
            "extended REF-3 lease_expires=2026-01-05T09:30:00Z");
}

TEST(FormatTest, JsonUsesProtoNamesAndIncludesDefaults) {
  v1::SubmitReferralResponse r;
  r.set_referral_id("REF-1");
  const std::string json = ToJson(r);
  EXPECT_THAT(json, HasSubstr("\"referral_id\":\"REF-1\""));
  EXPECT_THAT(json, HasSubstr("\"duplicate\":false"));
  EXPECT_THAT(json,
              HasSubstr("\"priority_band\":\"PRIORITY_BAND_UNSPECIFIED\""));
  EXPECT_EQ(json.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace referral::clients
