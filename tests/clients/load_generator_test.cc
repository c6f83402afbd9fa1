// The load generator against an in-process fake broker: it submits
// everything with many calls in flight, drains only what it submitted,
// counts failures by status code and reports them.
#include "load_generator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "broker_channel.h"
#include "fake_broker.h"
#include "fictitious_referral.h"

namespace referral::clients {
namespace {

using ::testing::HasSubstr;

std::vector<std::shared_ptr<grpc::Channel>> Channels(const std::string& address,
                                                     int count) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < count; ++i) {
    ChannelOptions options;
    options.address = address;
    options.dedicated_connection = count > 1;
    channels.push_back(*ConnectToBroker(options));
  }
  return channels;
}

ReferralSource Fictitious() {
  const absl::Time now = absl::Now();
  return [now](int64_t i) { return MakeFictitiousReferral(i, "loadgen", now); };
}

LoadOptions Small(int64_t n) {
  LoadOptions o;
  o.n = n;
  o.concurrency = 16;
  o.key_prefix = "run1-";
  o.claim_batch = 7;
  o.drain_workers = 3;
  o.drain_timeout = absl::Seconds(60);
  return o;
}

TEST(LoadGeneratorTest, SubmitsAndDrainsEverything) {
  referral::testing::FakeBroker broker;
  const LoadOptions options = Small(300);
  const LoadReport report =
      RunLoad(Channels(broker.address(), 2), options, Fictitious());
  EXPECT_EQ(report.submit.ok, 300);
  EXPECT_EQ(report.submit.failed, 0);
  EXPECT_EQ(report.decide.ok, 300);
  EXPECT_EQ(report.claimed, 300);
  EXPECT_EQ(report.foreign, 0);
  EXPECT_TRUE(report.drain_complete);
  EXPECT_EQ(report.submitted_per_queue.at("ifd-triage"), 300);
  EXPECT_EQ(report.decided_per_queue.at("ifd-triage"), 300);
  EXPECT_TRUE(LoadSucceeded(options, report));

  // Unique keys with the run's prefix, and the agency given.
  std::set<std::string> keys;
  for (const auto& submit : broker.submits()) {
    EXPECT_TRUE(absl::StartsWith(submit.idempotency_key(), "run1-"));
    EXPECT_EQ(submit.referral().referrer().agency_id(), "loadgen");
    keys.insert(submit.idempotency_key());
  }
  EXPECT_EQ(keys.size(), 300u);
  for (const auto& decision : broker.decisions()) {
    EXPECT_EQ(decision.decision(), v1::DECISION_NO_FURTHER_ACTION);
    EXPECT_FALSE(decision.rationale().empty());
  }
  for (const auto& claim : broker.claims()) {
    EXPECT_EQ(claim.max(), 7);
    EXPECT_TRUE(absl::StartsWith(claim.worker(), "loadgen-"));
  }

  const std::string text = FormatLoadReport(options, report);
  EXPECT_THAT(text, HasSubstr("submit   ok=300 failed=0 "));
  EXPECT_THAT(text, HasSubstr("decide   ok=300 failed=0 "));
  EXPECT_THAT(text, HasSubstr("queue    ifd-triage submitted=300 "
                              "decided=300\n"));
  EXPECT_THAT(text, HasSubstr("errors   none\nresult   OK\n"));
  const std::string json = LoadReportJson(options, report);
  EXPECT_THAT(json, HasSubstr("\"queues\":{\"ifd-triage\":{\"submitted\":300,"
                              "\"decided\":300}}"));
  EXPECT_THAT(json, HasSubstr("\"ok\":true}"));
  EXPECT_EQ(json.find('\n'), std::string::npos);
}

TEST(LoadGeneratorTest, BatchesSubmissionsThroughSubmitReferrals) {
  referral::testing::FakeBroker broker;
  LoadOptions options = Small(250);
  options.concurrency = 3;
  options.batch = 40;
  const LoadReport report =
      RunLoad(Channels(broker.address(), 2), options, Fictitious());
  EXPECT_EQ(report.submit.ok, 250);
  EXPECT_EQ(report.decide.ok, 250);
  EXPECT_TRUE(LoadSucceeded(options, report));
  // Six full calls and one of the last ten, every key once.
  std::vector<int> sizes = broker.batch_sizes();
  std::sort(sizes.begin(), sizes.end());
  EXPECT_THAT(sizes, ::testing::ElementsAre(10, 40, 40, 40, 40, 40, 40));
  std::set<std::string> keys;
  for (const auto& submit : broker.submits()) {
    keys.insert(submit.idempotency_key());
  }
  EXPECT_EQ(keys.size(), 250u);
  EXPECT_THAT(LoadReportJson(options, report), HasSubstr("\"batch\":40"));
}

TEST(LoadGeneratorTest, ABatchedReferralsFailureIsCountedForThatReferral) {
  referral::testing::FakeBroker broker;
  broker.FailEverySubmit(10, grpc::StatusCode::UNAVAILABLE);
  LoadOptions options = Small(100);
  options.batch = 25;
  const LoadReport report =
      RunLoad(Channels(broker.address(), 1), options, Fictitious());
  EXPECT_EQ(report.submit.ok, 90);
  EXPECT_EQ(report.submit.failed, 10);
  EXPECT_EQ(report.submit.errors.at("UNAVAILABLE"), 10);
  EXPECT_EQ(report.decide.ok, 90);
  EXPECT_FALSE(LoadSucceeded(options, report));
}

TEST(LoadGeneratorTest, RoutesPerQueueAndDrainsEachQueue) {
  referral::testing::FakeBroker broker;
  const absl::Time now = absl::Now();
  // Every third referral is an immediate risk: the fake routes those to
  // ifd-urgent.
  ReferralSource source = [now](int64_t i) {
    v1::Referral r = MakeFictitiousReferral(i, "loadgen", now);
    r.set_immediate_risk(i % 3 == 0);
    return r;
  };
  const LoadOptions options = Small(90);
  const LoadReport report =
      RunLoad(Channels(broker.address(), 1), options, source);
  EXPECT_EQ(report.submitted_per_queue.at("ifd-urgent"), 30);
  EXPECT_EQ(report.decided_per_queue.at("ifd-urgent"), 30);
  EXPECT_EQ(report.decided_per_queue.at("ifd-triage"), 60);
  EXPECT_TRUE(LoadSucceeded(options, report));
}

TEST(LoadGeneratorTest, CountsFailuresByStatusCode) {
  referral::testing::FakeBroker broker;
  broker.FailEverySubmit(10, grpc::StatusCode::UNAVAILABLE);
  const LoadOptions options = Small(100);
  const LoadReport report =
      RunLoad(Channels(broker.address(), 1), options, Fictitious());
  EXPECT_EQ(report.submit.ok, 90);
  EXPECT_EQ(report.submit.failed, 10);
  EXPECT_EQ(report.submit.errors.at("UNAVAILABLE"), 10);
  EXPECT_EQ(report.decide.ok, 90);  // what was stored still drains
  EXPECT_TRUE(report.drain_complete);
  EXPECT_FALSE(LoadSucceeded(options, report));
  const std::string text = FormatLoadReport(options, report);
  EXPECT_THAT(text, HasSubstr("errors   submit UNAVAILABLE=10\n"));
  EXPECT_THAT(text, HasSubstr("result   FAILED (10 RPCs failed)\n"));
  EXPECT_THAT(LoadReportJson(options, report),
              HasSubstr("\"errors\":{\"UNAVAILABLE\":10}"));
}

TEST(LoadGeneratorTest, DecideAnyDecidesWhatItClaimsFromTheHeadOfTheQueue) {
  referral::testing::FakeBroker broker;
  std::vector<std::string> earlier;
  for (int i = 0; i < 5; ++i)
    earlier.push_back(broker.AddForeign("ifd-triage"));
  LoadOptions options = Small(20);
  options.decide_any = true;
  const LoadReport report =
      RunLoad(Channels(broker.address(), 1), options, Fictitious());
  EXPECT_TRUE(LoadSucceeded(options, report))
      << FormatLoadReport(options, report);
  // At least twenty decided, starting with the five queued first; the
  // three workers' last claims (7 each) may take it a little past.
  EXPECT_GE(report.decide.ok, 20);
  EXPECT_LE(report.decide.ok, 20 + 3 * 7);
  EXPECT_EQ(report.decide.ok, report.claimed);
  EXPECT_EQ(report.foreign, 0);
  EXPECT_EQ(report.release.ok, 0);
  for (const std::string& id : earlier) {
    EXPECT_EQ(broker.record(id).decision, v1::DECISION_NO_FURTHER_ACTION);
  }
}

TEST(LoadGeneratorTest, LeavesOtherReferralsUndecided) {
  referral::testing::FakeBroker broker;
  const std::string foreign = broker.AddForeign("ifd-triage");
  const LoadOptions options = Small(20);
  const LoadReport report =
      RunLoad(Channels(broker.address(), 1), options, Fictitious());
  EXPECT_TRUE(LoadSucceeded(options, report))
      << FormatLoadReport(options, report);
  // Held until the drain ended, then given back once.
  EXPECT_EQ(report.foreign, 1);
  EXPECT_EQ(report.release.ok, 1);
  EXPECT_EQ(report.decide.ok, 20);
  EXPECT_EQ(broker.record(foreign).decision, v1::DECISION_UNSPECIFIED);
  EXPECT_EQ(broker.record(foreign).state, v1::REFERRAL_STATE_QUEUED);
  EXPECT_EQ(broker.record(foreign).attempts, 1);
  ASSERT_FALSE(broker.releases().empty());
  EXPECT_THAT(broker.releases()[0].reason(),
              HasSubstr("not submitted by this run"));
}

TEST(LoadGeneratorTest, NamedQueueWithNothingRoutedThereFails) {
  referral::testing::FakeBroker broker;
  LoadOptions options = Small(5);
  options.queue = "edt";
  const LoadReport report =
      RunLoad(Channels(broker.address(), 1), options, Fictitious());
  EXPECT_FALSE(report.drain_complete);
  EXPECT_THAT(report.drain_note,
              HasSubstr("no submission was routed to queue edt"));
  EXPECT_FALSE(LoadSucceeded(options, report));
}

TEST(LoadGeneratorTest, NoDrain) {
  referral::testing::FakeBroker broker;
  LoadOptions options = Small(10);
  options.drain = false;
  const LoadReport report =
      RunLoad(Channels(broker.address(), 1), options, Fictitious());
  EXPECT_EQ(report.submit.ok, 10);
  EXPECT_TRUE(broker.claims().empty());
  EXPECT_TRUE(LoadSucceeded(options, report));
  EXPECT_THAT(FormatLoadReport(options, report), Not(HasSubstr("claim ")));
}

TEST(LoadGeneratorTest, UnreachableBrokerFailsFastWithoutHanging) {
  LoadOptions options = Small(20);
  options.rpc_timeout = absl::Seconds(5);
  const absl::Time start = absl::Now();
  const LoadReport report =
      RunLoad(Channels("127.0.0.1:1", 1), options, Fictitious());
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  EXPECT_EQ(report.submit.failed, 20);
  EXPECT_EQ(report.submit.errors.at("UNAVAILABLE"), 20);
  EXPECT_FALSE(LoadSucceeded(options, report));
}

TEST(LoadGeneratorTest, DuplicatesAreReportedNotDrained) {
  referral::testing::FakeBroker broker;
  const LoadOptions options = Small(10);
  RunLoad(Channels(broker.address(), 1), options, Fictitious());
  // Same key prefix again: every submission is a duplicate.
  const LoadReport again =
      RunLoad(Channels(broker.address(), 1), options, Fictitious());
  EXPECT_EQ(again.duplicates, 10);
  EXPECT_TRUE(again.drain_complete);
  EXPECT_THAT(FormatLoadReport(options, again),
              HasSubstr("10 submissions were duplicates"));
}

}  // namespace
}  // namespace referral::clients
