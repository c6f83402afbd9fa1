// Crash consistency: the real broker binary under concurrent agency and
// triage load is SIGKILLed at random moments, again and again, and restarted
// on the same data directory each time. At the end the broker's one promise
// is checked against what the clients were told:
//   - every referral whose SubmitReferral returned OK exists, exactly once
//     (no two idempotency keys share an id, and resubmitting a key returns
//     the id it was acknowledged with);
//   - every submission whose call failed at a kill ("in doubt") lands exactly
//     once when resubmitted with its key: the original if it had landed;
//   - every RecordDecision that returned OK is still DECIDED with that
//     decision, and nothing is decided that no worker tried to decide;
//   - every referral is in exactly one place: ready in one queue, dead
//     lettered in one queue, or decided; the listings and the queue stats
//     agree with the referrals' own states and count nothing unknown;
//   - every claim that was never decided came back when its lease ran out
//     (each CLAIMED in a history is followed by LEASE_EXPIRED, or by the one
//     DECIDED), and what came back can be claimed again;
//   - the audit chain verifies.
// It prints the counts it checked.
//
// Modes:
//   CI (default): 20 kill cycles, well under a minute.
//   Longer: REFERRAL_CRASH_CYCLES=200 ctest -R CrashConsistency
//           (or run the binary with the variable set).
//   Reproduce a run's kill timings: REFERRAL_CRASH_SEED=<seed printed by the
//   run>, or pass --crash_seed=<seed> to the test binary. Thread scheduling
//   still varies, so a seed reproduces the kill points, not every interleaving.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "support/broker_process.h"
#include "support/broker_workload.h"

namespace referral {
namespace {

using ::referral::testing::BrokerClients;
using ::referral::testing::BrokerProcess;
using ::referral::testing::CountStage;
using ::referral::testing::DeadLetterIds;
using ::referral::testing::DrainEveryQueue;
using ::referral::testing::ExpectDeliveriesInOrder;
using ::referral::testing::ExpectEachReferralInOnePlace;
using ::referral::testing::kWorkQueues;
using ::referral::testing::ParallelFor;
using ::referral::testing::QueueStats;
using ::referral::testing::ReadyIds;
using ::referral::testing::TempDir;
using ::referral::testing::WorkloadDecision;

constexpr int kDefaultCycles = 20;
constexpr int kAgencyThreads = 3;
constexpr int kTriageThreads = 2;
constexpr int kLeaseSeconds = 2;

// ---------------------------------------------------------------------------
// Run parameters.

int CyclesToRun() {
  const char* text = std::getenv("REFERRAL_CRASH_CYCLES");
  int cycles = 0;
  if (text != nullptr && absl::SimpleAtoi(text, &cycles) && cycles > 0) {
    return cycles;
  }
  return kDefaultCycles;
}

// --crash_seed=N on the command line (gtest_main leaves unknown flags alone
// but does not hand them to tests, so read them where the kernel keeps them),
// else REFERRAL_CRASH_SEED, else a fresh seed.
uint64_t ChooseSeed() {
  std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
  std::string arg;
  while (std::getline(cmdline, arg, '\0')) {
    constexpr std::string_view kFlag = "--crash_seed=";
    uint64_t seed = 0;
    if (arg.starts_with(kFlag) &&
        absl::SimpleAtoi(arg.substr(kFlag.size()), &seed)) {
      return seed;
    }
  }
  const char* text = std::getenv("REFERRAL_CRASH_SEED");
  uint64_t seed = 0;
  if (text != nullptr && absl::SimpleAtoi(text, &seed)) return seed;
  return std::random_device{}();
}

// ---------------------------------------------------------------------------
// Referral content, a pure function of the submission number so that an
// in-doubt submission can be resubmitted with exactly the same referral.

std::string AgencyFor(int n) { return absl::StrCat("crash-agency-", n % 3); }
std::string KeyFor(int n) { return absl::StrCat("crash-", n); }

v1::Referral ReferralFor(int n) {
  return testing::WorkloadReferral(AgencyFor(n), n);
}

grpc::Status Submit(BrokerClients& clients, int n,
                    v1::SubmitReferralResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::SubmitReferralRequest request;
  *request.mutable_referral() = ReferralFor(n);
  request.set_idempotency_key(KeyFor(n));
  return clients.intake->SubmitReferral(&context, request, response);
}

// ---------------------------------------------------------------------------
// What the clients were told, across all cycles.

struct Ledger {
  absl::Mutex mutex;
  std::map<int, std::string> acknowledged;      // submission number -> id
  std::set<int> in_doubt;                       // submissions whose call failed
  std::map<std::string, v1::Decision> decided;  // RecordDecision OK
  std::set<std::string> decision_in_doubt;      // RecordDecision failed
  std::set<std::string> decision_attempted;
  int64_t claims = 0;
  int64_t abandoned = 0;        // claimed and left for the lease to run out
  int64_t stale_decisions = 0;  // lease had run out: FAILED_PRECONDITION
  std::map<std::string, int64_t> failures;  // by status code, while killed
  std::vector<std::string> violations;      // seen live by the clients
};

std::string CodeName(const grpc::Status& status) {
  return absl::StrCat("code ", static_cast<int>(status.error_code()));
}

// Counts a call that failed because the broker was killed under it. A kill
// leaves a client nothing to hear but an unavailable broker (or a deadline);
// any other failure is the broker or this test wrong. Needs ledger.mutex.
void RecordFailure(Ledger& ledger, const std::string& call,
                   const grpc::Status& status) {
  ++ledger.failures[absl::StrCat(call, " ", CodeName(status))];
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
      status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
    ledger.violations.push_back(absl::StrCat(
        call, " failed with ", CodeName(status), ": ", status.error_message()));
  }
}

void AgencyLoop(const std::string& address, std::atomic<int>& next_n,
                const std::atomic<bool>& stop, Ledger& ledger) {
  BrokerClients clients(address);
  while (!stop.load()) {
    const int n = next_n.fetch_add(1);
    v1::SubmitReferralResponse response;
    grpc::Status status = Submit(clients, n, &response);
    absl::MutexLock lock(&ledger.mutex);
    if (status.ok()) {
      if (response.duplicate()) {
        ledger.violations.push_back(
            absl::StrCat(KeyFor(n), ": first submission reported duplicate"));
      }
      ledger.acknowledged[n] = response.referral_id();
    } else {
      ledger.in_doubt.insert(n);
      RecordFailure(ledger, "submit", status);
      return;  // the broker is gone until the next cycle
    }
  }
}

void TriageLoop(const std::string& address, const std::string& worker,
                uint64_t seed, const std::atomic<bool>& stop, Ledger& ledger) {
  BrokerClients clients(address);
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution abandon(0.3);
  for (int round = 0; !stop.load(); ++round) {
    v1::ClaimReferralsRequest request;
    request.set_queue(kWorkQueues[round % 3]);
    request.set_max(4);
    request.set_lease_seconds(kLeaseSeconds);
    request.set_worker(worker);
    v1::ClaimReferralsResponse claimed;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    grpc::Status status =
        clients.triage->ClaimReferrals(&context, request, &claimed);
    if (!status.ok()) {
      absl::MutexLock lock(&ledger.mutex);
      RecordFailure(ledger, "claim", status);
      return;
    }
    if (claimed.claims().empty()) {
      // Nothing ready in this queue: a worker's polling pause.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    for (const auto& claim : claimed.claims()) {
      {
        absl::MutexLock lock(&ledger.mutex);
        ++ledger.claims;
        if (ledger.decided.contains(claim.referral_id())) {
          ledger.violations.push_back(absl::StrCat(
              claim.referral_id(), ": delivered again after it was decided"));
        }
      }
      if (abandon(rng)) {
        absl::MutexLock lock(&ledger.mutex);
        ++ledger.abandoned;
        continue;
      }
      const v1::Decision decision = WorkloadDecision(claim.referral_id());
      v1::RecordDecisionRequest decide;
      decide.set_referral_id(claim.referral_id());
      decide.set_lease_token(claim.lease_token());
      decide.set_decision(decision);
      decide.set_rationale("Fictitious crash-test rationale.");
      v1::RecordDecisionResponse decided;
      grpc::ClientContext decide_context;
      decide_context.set_deadline(std::chrono::system_clock::now() +
                                  std::chrono::seconds(10));
      {
        absl::MutexLock lock(&ledger.mutex);
        ledger.decision_attempted.insert(claim.referral_id());
      }
      grpc::Status outcome =
          clients.triage->RecordDecision(&decide_context, decide, &decided);
      absl::MutexLock lock(&ledger.mutex);
      if (outcome.ok()) {
        if (!ledger.decided.emplace(claim.referral_id(), decision).second) {
          ledger.violations.push_back(
              absl::StrCat(claim.referral_id(), ": decided twice with OK"));
        }
      } else if (outcome.error_code() ==
                 grpc::StatusCode::FAILED_PRECONDITION) {
        // The lease ran out (e.g. across a restart): a stale token must be
        // refused, and the referral comes back to the queue.
        ++ledger.stale_decisions;
      } else {
        ledger.decision_in_doubt.insert(claim.referral_id());
        RecordFailure(ledger, "decide", outcome);
        return;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Reading the final state.

std::unique_ptr<BrokerProcess> StartBroker(const TempDir& dir) {
  auto broker = BrokerProcess::Start({
      .data_dir = dir.Sub("data"),
      // Verification reads every referral several times: the per-principal
      // rate limit is for runaway clients, not for this test.
      .flags = {"--lease_check_ms=50", "--shutdown_grace_seconds=1",
                "--rate_limit_per_second=1000000",
                "--rate_limit_burst=1000000"},
      .log_file = dir.Sub("broker.log"),
  });
  EXPECT_TRUE(broker.ok()) << broker.status();
  return broker.ok() ? *std::move(broker) : nullptr;
}

// ---------------------------------------------------------------------------

TEST(CrashConsistencyTest, AcknowledgedWorkSurvivesRepeatedKillsExactlyOnce) {
  const int cycles = CyclesToRun();
  const uint64_t seed = ChooseSeed();
  std::printf(
      "crash consistency: seed %llu (REFERRAL_CRASH_SEED=%llu to "
      "reproduce), %d cycles\n",
      static_cast<unsigned long long>(seed),
      static_cast<unsigned long long>(seed), cycles);
  std::fflush(stdout);
  SCOPED_TRACE(absl::StrCat("REFERRAL_CRASH_SEED=", seed));
  const absl::Time started = absl::Now();

  TempDir dir;
  Ledger ledger;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> run_ms(100, 600);
  std::atomic<int> next_n{0};

  for (int cycle = 0; cycle < cycles; ++cycle) {
    std::unique_ptr<BrokerProcess> broker = StartBroker(dir);
    ASSERT_NE(broker, nullptr) << "cycle " << cycle;
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kAgencyThreads; ++t) {
      threads.emplace_back(AgencyLoop, broker->address(), std::ref(next_n),
                           std::cref(stop), std::ref(ledger));
    }
    for (int t = 0; t < kTriageThreads; ++t) {
      threads.emplace_back(TriageLoop, broker->address(),
                           absl::StrCat("crash.worker.", t), rng(),
                           std::cref(stop), std::ref(ledger));
    }
    // The kill lands at a random moment of the load: that moment is what
    // this test varies, so this is a timer, not a wait for a condition.
    std::this_thread::sleep_for(std::chrono::milliseconds(run_ms(rng)));
    broker->Kill();
    stop = true;
    for (auto& thread : threads) thread.join();
  }

  std::unique_ptr<BrokerProcess> broker = StartBroker(dir);
  ASSERT_NE(broker, nullptr);
  BrokerClients clients(broker->address());
  {
    absl::MutexLock lock(&ledger.mutex);
    for (const std::string& violation : ledger.violations) {
      ADD_FAILURE() << "seen by a client: " << violation;
    }
  }
  // From here on only this thread touches the ledger.
  const std::map<int, std::string>& acknowledged = ledger.acknowledged;
  ASSERT_GT(acknowledged.size(), 0u);

  // Every key is retried once more, as an agency would after any doubt: an
  // acknowledged key returns its referral as a duplicate; an in-doubt key
  // returns the original if it had landed, else stores it now; a second
  // retry of an in-doubt key is a duplicate of the first.
  std::vector<int> keys;
  for (const auto& [n, id] : acknowledged) keys.push_back(n);
  keys.insert(keys.end(), ledger.in_doubt.begin(), ledger.in_doubt.end());
  std::vector<std::string> final_id(keys.size());
  std::vector<int> landed_before(keys.size(), 0);
  ParallelFor(
      broker->address(), keys.size(), [&](BrokerClients& own, size_t i) {
        const int n = keys[i];
        v1::SubmitReferralResponse first, second;
        grpc::Status status = Submit(own, n, &first);
        ASSERT_TRUE(status.ok()) << KeyFor(n) << ": " << status.error_message();
        final_id[i] = first.referral_id();
        landed_before[i] = first.duplicate() ? 1 : 0;
        auto it = acknowledged.find(n);
        if (it != acknowledged.end()) {
          EXPECT_TRUE(first.duplicate()) << KeyFor(n);
          EXPECT_EQ(first.referral_id(), it->second) << KeyFor(n);
          return;
        }
        status = Submit(own, n, &second);
        ASSERT_TRUE(status.ok()) << KeyFor(n) << ": " << status.error_message();
        EXPECT_TRUE(second.duplicate()) << KeyFor(n);
        EXPECT_EQ(second.referral_id(), first.referral_id()) << KeyFor(n);
      });
  int64_t in_doubt_landed = 0;
  for (size_t i = acknowledged.size(); i < keys.size(); ++i) {
    in_doubt_landed += landed_before[i];
  }
  // No two keys share a referral: an id reused after a restart would be one
  // referral "delivered as if it were two" the other way round.
  std::set<std::string> all_ids;
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_TRUE(all_ids.insert(final_id[i]).second)
        << final_id[i] << " is returned for two keys (" << KeyFor(keys[i])
        << ")";
  }
  ASSERT_FALSE(HasFailure()) << "stopping before the state checks";

  // Leases are at most kLeaseSeconds long: await the reaper returning every
  // claim left from the cycles.
  {
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    int64_t claimed_now = 0;
    do {
      claimed_now = 0;
      const v1::GetQueueStatsResponse stats = QueueStats(clients);
      for (const auto& queue : stats.queues()) {
        claimed_now += queue.claimed_count();
      }
      if (claimed_now == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (absl::Now() < give_up);
    ASSERT_EQ(claimed_now, 0) << "leases still held 30 s after restart";
  }

  // Every referral's own state and history.
  const std::vector<std::string> ids(all_ids.begin(), all_ids.end());
  std::vector<v1::GetReferralStatusResponse> status_of(ids.size());
  ParallelFor(broker->address(), ids.size(), [&](BrokerClients& own, size_t i) {
    grpc::ClientContext context;
    v1::GetReferralStatusRequest request;
    request.set_referral_id(ids[i]);
    grpc::Status status =
        own.intake->GetReferralStatus(&context, request, &status_of[i]);
    EXPECT_TRUE(status.ok()) << ids[i] << ": " << status.error_message();
  });
  std::map<v1::ReferralState, int64_t> by_state;
  int64_t lease_returns = 0;
  int64_t redelivered = 0;
  std::set<std::string> queued_ids, dead_ids;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& id = ids[i];
    const v1::GetReferralStatusResponse& referral = status_of[i];
    ++by_state[referral.state()];
    ASSERT_GE(referral.history_size(), 2) << id;
    EXPECT_EQ(referral.history(0).stage(), v1::STAGE_RECEIVED) << id;
    EXPECT_EQ(referral.history(1).stage(), v1::STAGE_ROUTED) << id;
    const int claims = CountStage(referral, v1::STAGE_CLAIMED);
    const int expiries = CountStage(referral, v1::STAGE_LEASE_EXPIRED);
    const int decisions = CountStage(referral, v1::STAGE_DECIDED);
    lease_returns += expiries;
    if (claims > 1) ++redelivered;
    switch (referral.state()) {
      case v1::REFERRAL_STATE_QUEUED:
        queued_ids.insert(id);
        break;
      case v1::REFERRAL_STATE_DEAD_LETTERED:
        dead_ids.insert(id);
        EXPECT_EQ(referral.history(referral.history_size() - 1).stage(),
                  v1::STAGE_DEAD_LETTERED)
            << id;
        break;
      case v1::REFERRAL_STATE_DECIDED:
        EXPECT_TRUE(ledger.decision_attempted.contains(id))
            << id << " is decided but no worker tried to decide it";
        EXPECT_EQ(referral.decision(), WorkloadDecision(id)) << id;
        break;
      default:
        ADD_FAILURE() << id << " is in state "
                      << v1::ReferralState_Name(referral.state());
    }
    // Nothing here releases a claim: every delivery ends in the one
    // decision or in the lease running out.
    EXPECT_EQ(decisions, referral.state() == v1::REFERRAL_STATE_DECIDED ? 1 : 0)
        << id;
    EXPECT_EQ(claims, expiries + decisions) << id;
    // Each delivery, in order, ends in the decision or in its lease running
    // out, and never before the lease was up.
    ExpectDeliveriesInOrder(id, referral, absl::Seconds(kLeaseSeconds));
    auto decided = ledger.decided.find(id);
    if (decided != ledger.decided.end()) {
      EXPECT_EQ(referral.state(), v1::REFERRAL_STATE_DECIDED)
          << id << ": decision acknowledged with OK is lost";
      EXPECT_EQ(referral.decision(), decided->second) << id;
    }
  }

  // Exactly one place: the queue and dead-letter listings hold each
  // referral once, exactly those in that state, in the queue the referral
  // names; the stats count nothing this test does not know of.
  std::map<std::string, std::string> queue_of;
  for (size_t i = 0; i < ids.size(); ++i) {
    queue_of[ids[i]] = status_of[i].queue();
  }
  ExpectEachReferralInOnePlace(clients, queue_of, queued_ids, dead_ids,
                               by_state[v1::REFERRAL_STATE_DECIDED],
                               static_cast<int64_t>(ids.size()));

  // What came back is claimable: draining every queue claims exactly the
  // ready referrals, each once.
  const std::multiset<std::string> drained =
      DrainEveryQueue(clients, "crash.drain");
  EXPECT_EQ(drained,
            std::multiset<std::string>(queued_ids.begin(), queued_ids.end()));

  grpc::ClientContext audit_context;
  v1::VerifyAuditResponse audit;
  grpc::Status audit_status = clients.operations->VerifyAudit(
      &audit_context, v1::VerifyAuditRequest(), &audit);
  ASSERT_TRUE(audit_status.ok()) << audit_status.error_message();
  EXPECT_TRUE(audit.intact())
      << "first bad seq " << audit.first_bad_seq() << ": " << audit.problem();

  std::string failures;
  for (const auto& [what, count] : ledger.failures) {
    absl::StrAppend(&failures, failures.empty() ? "" : ", ", what, ": ", count);
  }
  std::printf(
      "crash consistency: seed %llu, %d cycles in %.1f s; %zu acknowledged, "
      "%zu in doubt (%lld had landed), %zu resubmitted, %zu distinct stored; "
      "%lld claims, %lld abandoned, %zu decided OK, %zu decisions in doubt, "
      "%lld stale decisions refused; %lld lease returns, %lld redelivered; "
      "final: %lld queued, %lld decided, %lld dead-lettered, %zu drained; "
      "audit %llu records intact=%d; failed calls at kills: %s\n",
      static_cast<unsigned long long>(seed), cycles,
      absl::ToDoubleSeconds(absl::Now() - started), acknowledged.size(),
      ledger.in_doubt.size(), static_cast<long long>(in_doubt_landed),
      keys.size(), ids.size(), static_cast<long long>(ledger.claims),
      static_cast<long long>(ledger.abandoned), ledger.decided.size(),
      ledger.decision_in_doubt.size(),
      static_cast<long long>(ledger.stale_decisions),
      static_cast<long long>(lease_returns),
      static_cast<long long>(redelivered),
      static_cast<long long>(by_state[v1::REFERRAL_STATE_QUEUED]),
      static_cast<long long>(by_state[v1::REFERRAL_STATE_DECIDED]),
      static_cast<long long>(by_state[v1::REFERRAL_STATE_DEAD_LETTERED]),
      drained.size(), static_cast<unsigned long long>(audit.records_checked()),
      audit.intact() ? 1 : 0, failures.c_str());

  ASSERT_TRUE(broker->Terminate().ok());
}

}  // namespace
}  // namespace referral
