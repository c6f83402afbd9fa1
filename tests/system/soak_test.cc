// Soak: the real broker binary under a steady mixed load for a configured
// time. Agencies submit (and now and then resubmit an acknowledged key,
// which must come back duplicate=true with the same id); triage workers
// claim with short leases and then decide, release with a reason, or
// abandon the claim so that its lease runs out; an acknowledger collects
// and acknowledges the agencies' outcomes. Every report interval one line
// gives the rates, the ready backlog and the broker's RSS and open file
// descriptors.
//
// It fails when
//   - a client is told something the broker promised never to say (an
//     error, a duplicate for a fresh key, a delivery after a decision, an
//     outcome listed again after its acknowledgement, ...);
//   - the broker's memory or descriptors grow without bound (the criterion
//     is explained at ResourceVerdict below);
//   - at the end, once the load stops and leases run out, any of the
//     crash-consistency invariants breaks: every acknowledged submission
//     exists exactly once; every decision answered OK is still recorded
//     (decided or outcome acknowledged) with its decision, and nothing else
//     is decided; every referral is in exactly one place and the listings,
//     stats and outcome lists agree; every claim ended in one decision, one
//     release or one lease expiry (the histories, the client's own counts
//     and the broker's metrics agree); what came back can be claimed again;
//     the audit chain verifies.
// It prints the counts it checked.
//
// Settings (environment):
//   REFERRAL_SOAK_SECONDS         load duration; default 600 (ten minutes);
//                                 ctest sets 60, so CI runs about 70 s
//   REFERRAL_SOAK_REPORT_SECONDS  report interval; default 60, or a quarter
//                                 of a shorter run (15 s in CI), so that
//                                 every run prints several lines
//   REFERRAL_SOAK_SEED            replay a run's choices (printed at start);
//                                 thread scheduling still varies
//   REFERRAL_SOAK_SUBMITS_PER_SECOND  offered intake rate; default 60, a
//                                 steady front-door load that two triage
//                                 workers keep up with on the CI machine
// e.g. REFERRAL_SOAK_SECONDS=3600 build/tests/soak_test for an hour.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "support/broker_process.h"
#include "support/broker_workload.h"
#include "support/http_get.h"

namespace referral {
namespace {

using ::referral::testing::BrokerClients;
using ::referral::testing::BrokerProcess;
using ::referral::testing::CountStage;
using ::referral::testing::DeadLetterIds;
using ::referral::testing::DrainEveryQueue;
using ::referral::testing::ExpectDeliveriesInOrder;
using ::referral::testing::ExpectEachReferralInOnePlace;
using ::referral::testing::HttpGet;
using ::referral::testing::kWorkQueues;
using ::referral::testing::ParallelFor;
using ::referral::testing::ProcessResources;
using ::referral::testing::QueueStats;
using ::referral::testing::ReadProcessResources;
using ::referral::testing::ReadyIds;
using ::referral::testing::TempDir;
using ::referral::testing::WorkloadDecision;

constexpr int kAgencies = 3;
constexpr int kTriageWorkers = 2;
constexpr int kMinLeaseSeconds = 1;
constexpr int kMaxLeaseSeconds = 2;
constexpr int kMaxDeliveries = 5;  // the broker's default, passed explicitly

// ---------------------------------------------------------------------------
// Run parameters.

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* text = std::getenv(name);
  int64_t value = 0;
  if (text != nullptr && absl::SimpleAtoi(text, &value) && value > 0) {
    return value;
  }
  return fallback;
}

uint64_t ChooseSeed() {
  const char* text = std::getenv("REFERRAL_SOAK_SEED");
  uint64_t seed = 0;
  if (text != nullptr && absl::SimpleAtoi(text, &seed)) return seed;
  return std::random_device{}();
}

// ---------------------------------------------------------------------------
// Referral content: a pure function of the submission number, so that a
// resubmission sends exactly the referral its key was acknowledged for.

// Submission n belongs to agency n % kAgencies.
std::string AgencyFor(int n) {
  return absl::StrCat("soak-agency-", n % kAgencies);
}
std::string KeyFor(int n) { return absl::StrCat("soak-", n); }

v1::Referral ReferralFor(int n) {
  return testing::WorkloadReferral(AgencyFor(n), n);
}

std::chrono::system_clock::time_point Deadline() {
  // Generous: a loaded two-core machine can stall a synced commit for
  // seconds; a call that still fails is reported, never retried.
  return std::chrono::system_clock::now() + std::chrono::seconds(30);
}

grpc::Status Submit(BrokerClients& clients, int n,
                    v1::SubmitReferralResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  v1::SubmitReferralRequest request;
  *request.mutable_referral() = ReferralFor(n);
  request.set_idempotency_key(KeyFor(n));
  return clients.intake->SubmitReferral(&context, request, response);
}

// ---------------------------------------------------------------------------
// What the clients were told.

// Per-interval rates (reset by the reporter) and run totals.
struct Counter {
  std::atomic<int64_t> interval{0};
  std::atomic<int64_t> total{0};
  void Add() {
    ++interval;
    ++total;
  }
};

struct Ledger {
  absl::Mutex mutex;
  std::map<int, std::string> acknowledged;      // submission -> id
  std::map<std::string, v1::Decision> decided;  // RecordDecision OK
  std::set<std::string> outcomes_acknowledged;  // AcknowledgeOutcome OK
  std::vector<std::string> violations;          // seen live by a client
  int64_t claims = 0;
  int64_t stale = 0;  // decide/release refused: the lease had run out

  Counter submits, resubmits, decides, releases, abandons, outcome_acks;
};

void Violation(Ledger& ledger, const std::string& what) {
  absl::MutexLock lock(&ledger.mutex);
  ledger.violations.push_back(what);
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("code ", static_cast<int>(status.error_code()), ": ",
                      status.error_message());
}

// Waits for the next submission slot of an agency offering `per_second`.
// A soak is a steady load, not a stress test: the pace is the point, so this
// waits for a time, not for a condition. A broker that falls behind simply
// lowers the rate (no burst to catch up).
class Pacer {
 public:
  explicit Pacer(double per_second)
      : period_(absl::Seconds(1.0 / per_second)), next_(absl::Now()) {}
  void Wait(const std::atomic<bool>& stop) {
    next_ += period_;
    const absl::Time now = absl::Now();
    if (next_ < now) {
      next_ = now;
      return;
    }
    while (!stop.load() && absl::Now() < next_) {
      absl::SleepFor(std::min(next_ - absl::Now(), absl::Milliseconds(100)));
    }
  }

 private:
  absl::Duration period_;
  absl::Time next_;
};

void AgencyLoop(const std::string& address, int agency, double per_second,
                uint64_t seed, std::atomic<int>& next_n,
                const std::atomic<bool>& stop, Ledger& ledger) {
  BrokerClients clients(address);
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution resubmit(0.05);
  std::vector<std::pair<int, std::string>> mine;  // acknowledged by me
  Pacer pacer(per_second);
  while (!stop.load()) {
    pacer.Wait(stop);
    if (stop.load()) break;
    v1::SubmitReferralResponse response;
    if (!mine.empty() && resubmit(rng)) {
      // An agency retrying after a lost answer: same key, same referral.
      const auto& [n, id] =
          mine[std::uniform_int_distribution<size_t>(0, mine.size() - 1)(rng)];
      grpc::Status status = Submit(clients, n, &response);
      if (!status.ok()) {
        Violation(ledger, absl::StrCat("resubmit ", KeyFor(n), " failed with ",
                                       Describe(status)));
      } else if (!response.duplicate() || response.referral_id() != id) {
        Violation(ledger, absl::StrCat("resubmit ", KeyFor(n), " returned ",
                                       response.referral_id(),
                                       " duplicate=", response.duplicate(),
                                       ", acknowledged as ", id));
      }
      ledger.resubmits.Add();
      continue;
    }
    // Submission numbers n with n % kAgencies == agency belong to it.
    const int n = next_n.fetch_add(1) * kAgencies + agency;
    grpc::Status status = Submit(clients, n, &response);
    if (!status.ok()) {
      Violation(ledger, absl::StrCat("submit ", KeyFor(n), " failed with ",
                                     Describe(status)));
      continue;
    }
    if (response.duplicate()) {
      Violation(ledger, absl::StrCat(KeyFor(n),
                                     ": first submission reported duplicate"));
    }
    mine.emplace_back(n, response.referral_id());
    {
      absl::MutexLock lock(&ledger.mutex);
      ledger.acknowledged[n] = response.referral_id();
    }
    ledger.submits.Add();
  }
}

void TriageLoop(const std::string& address, const std::string& worker,
                uint64_t seed, const std::atomic<bool>& stop, Ledger& ledger) {
  BrokerClients clients(address);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> lease(kMinLeaseSeconds, kMaxLeaseSeconds);
  std::uniform_real_distribution<double> choice(0.0, 1.0);
  for (int round = 0; !stop.load(); ++round) {
    v1::ClaimReferralsRequest request;
    request.set_queue(kWorkQueues[round % 3]);
    request.set_max(4);
    request.set_lease_seconds(lease(rng));
    request.set_worker(worker);
    v1::ClaimReferralsResponse claimed;
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    grpc::Status status =
        clients.triage->ClaimReferrals(&context, request, &claimed);
    if (!status.ok()) {
      Violation(ledger, absl::StrCat("claim failed with ", Describe(status)));
      continue;
    }
    if (claimed.claims().empty()) {
      // Nothing ready in this queue: a worker's polling pause.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    for (const auto& claim : claimed.claims()) {
      const std::string& id = claim.referral_id();
      {
        absl::MutexLock lock(&ledger.mutex);
        ++ledger.claims;
        if (ledger.decided.contains(id)) {
          ledger.violations.push_back(
              absl::StrCat(id, ": delivered again after it was decided"));
        }
      }
      const double what = choice(rng);
      if (what >= 0.75) {
        // Walks away: the lease runs out and the reaper returns it.
        ledger.abandons.Add();
        continue;
      }
      grpc::ClientContext call;
      call.set_deadline(Deadline());
      grpc::Status outcome;
      const bool decide = what < 0.6;
      if (decide) {
        v1::RecordDecisionRequest decision;
        decision.set_referral_id(id);
        decision.set_lease_token(claim.lease_token());
        decision.set_decision(WorkloadDecision(id));
        decision.set_rationale("Fictitious soak-test rationale.");
        decision.set_feedback("Fictitious feedback for the referrer.");
        v1::RecordDecisionResponse response;
        outcome = clients.triage->RecordDecision(&call, decision, &response);
      } else {
        v1::ReleaseReferralRequest release;
        release.set_referral_id(id);
        release.set_lease_token(claim.lease_token());
        release.set_reason("Fictitious: needs the school's view first.");
        v1::ReleaseReferralResponse response;
        outcome = clients.triage->ReleaseReferral(&call, release, &response);
      }
      absl::MutexLock lock(&ledger.mutex);
      if (outcome.ok()) {
        if (!decide) {
          ledger.releases.Add();
        } else if (ledger.decided.emplace(id, WorkloadDecision(id)).second) {
          ledger.decides.Add();
        } else {
          ledger.violations.push_back(absl::StrCat(id, ": decided twice"));
        }
      } else if (outcome.error_code() ==
                 grpc::StatusCode::FAILED_PRECONDITION) {
        // The machine stalled past the lease: the stale token must be
        // refused and the referral comes back by lease expiry.
        ++ledger.stale;
      } else {
        ledger.violations.push_back(
            absl::StrCat(decide ? "decide " : "release ", id, " failed with ",
                         Describe(outcome)));
      }
    }
  }
}

// Lists and acknowledges every agency's outcomes, a few times a second.
void AcknowledgerLoop(const std::string& address, absl::Notification& stop,
                      Ledger& ledger) {
  BrokerClients clients(address);
  while (!stop.WaitForNotificationWithTimeout(absl::Milliseconds(250))) {
    for (int agency = 0; agency < kAgencies; ++agency) {
      grpc::ClientContext context;
      context.set_deadline(Deadline());
      v1::ListOutcomesRequest request;
      request.set_agency(AgencyFor(agency));
      request.set_page_size(200);
      v1::ListOutcomesResponse outcomes;
      grpc::Status status =
          clients.intake->ListOutcomes(&context, request, &outcomes);
      if (!status.ok()) {
        Violation(ledger,
                  absl::StrCat("list outcomes failed with ", Describe(status)));
        continue;
      }
      for (const v1::Outcome& outcome : outcomes.outcomes()) {
        const std::string& id = outcome.referral_id();
        if (outcome.decision() != WorkloadDecision(id)) {
          Violation(ledger, absl::StrCat(id, ": outcome lists decision ",
                                         outcome.decision()));
        }
        {
          absl::MutexLock lock(&ledger.mutex);
          if (ledger.outcomes_acknowledged.contains(id)) {
            ledger.violations.push_back(
                absl::StrCat(id, ": outcome listed after acknowledgement"));
            continue;
          }
        }
        grpc::ClientContext ack_context;
        ack_context.set_deadline(Deadline());
        v1::AcknowledgeOutcomeRequest ack;
        ack.set_referral_id(id);
        v1::AcknowledgeOutcomeResponse acked;
        status = clients.intake->AcknowledgeOutcome(&ack_context, ack, &acked);
        absl::MutexLock lock(&ledger.mutex);
        if (!status.ok()) {
          ledger.violations.push_back(absl::StrCat(
              "acknowledge ", id, " failed with ", Describe(status)));
        } else if (acked.already_acknowledged()) {
          ledger.violations.push_back(
              absl::StrCat(id, ": first acknowledgement was already made"));
        } else {
          ledger.outcomes_acknowledged.insert(id);
          ledger.outcome_acks.Add();
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Observing the broker.

// Sum of every sample of a counter family in a Prometheus text page.
double MetricSum(const std::string& page, const std::string& family) {
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::StartsWith(line, family)) continue;
    const absl::string_view rest = line.substr(family.size());
    if (rest.empty() || (rest[0] != '{' && rest[0] != ' ')) continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space != absl::string_view::npos &&
        absl::SimpleAtod(line.substr(space + 1), &value)) {
      sum += value;
    }
  }
  return sum;
}

double ScrapeSum(const BrokerProcess& broker, const std::string& family) {
  auto page = HttpGet(broker.metrics_port(), "/metrics");
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? MetricSum(page->body, family) : 0;
}

double MiB(int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

struct Sample {
  absl::Duration at;  // since the load started
  ProcessResources resources;
};

// ---------------------------------------------------------------------------
// The resource criterion.
//
// What may grow legitimately: RocksDB's memtables (32 MiB for records, 8 MiB
// for each index family, two of each at most) fill and flush -- a
// saw-tooth of some 30 MiB every few minutes at the default rate -- its
// block cache (64 MiB) fills with what is read back from table files, the
// allocator keeps freed memory, and every table file of the store stays
// open (max_open_files = -1) while compaction keeps their number to a few
// per family. All of that levels off, though a ten-minute run at the
// default rate ends before the block cache is full. A leak does not level
// off: it rises in proportion to the calls served.
//
// So, over the samples taken after a warm-up (the first report interval,
// at most a quarter of the run), split into thirds by time, each third's
// floor (its lowest sample: just after a memtable flush, so the saw-tooth
// drops out) is compared:
//   - RSS fails if the last floor is more than 256 MiB above the first
//     (more than every cache and memtable of the store could hold), or if
//     it is still rising at an undiminished pace: the last floor more than
//     48 MiB above the middle one, and that rise at least half of the one
//     before. Caches and memtables rise less from one third to the next,
//     but not by much within ten minutes: measured at the default rate,
//     the floors were 47, 76 and 100 MiB (the allocator's peak ratchets up
//     as memtables fill while others flush, then holds for minutes), so
//     the bound is twice that last rise. A leak keeps its pace: at the
//     default rate the broker serves 400 to 500 calls a second (the
//     "broker calls" of each report line), so a leak of 1 KiB per call
//     adds over 70 MiB per third of a ten-minute run on top. A
//     one-minute CI run only catches gross leaks (MiB per second); the long
//     run is the real soak.
//   - Descriptors other than table files may grow by at most 16 from the
//     first post-warm-up sample to the end (a few gRPC connections and a
//     write-ahead log being rotated); table files are bounded by the store
//     itself, so the check is that once the load stops no descriptor is
//     left on a deleted table file.
struct ResourceVerdict {
  std::vector<std::string> failures;
  std::string summary;
};

constexpr int64_t kRssHardBound = int64_t{256} << 20;
constexpr int64_t kRssRisingBound = int64_t{48} << 20;
constexpr int kFdGrowthBound = 16;

// Under AddressSanitizer or ThreadSanitizer (deploy/sanitize.sh builds the
// broker and this test alike) RSS is mostly the sanitizer's: ASan's
// quarantine keeps up to 256 MiB of freed memory and shadow memory grows
// with what was touched. The RSS criterion would judge the sanitizer, so
// there it is printed but not applied (LeakSanitizer checks the broker's
// own leaks when it exits); descriptors and every invariant still are.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kJudgeRss = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kJudgeRss = false;
#else
constexpr bool kJudgeRss = true;
#endif
#else
constexpr bool kJudgeRss = true;
#endif

int64_t FloorRss(std::vector<Sample>::const_iterator begin,
                 std::vector<Sample>::const_iterator end) {
  int64_t floor = std::numeric_limits<int64_t>::max();
  for (auto it = begin; it != end; ++it) {
    floor = std::min(floor, it->resources.rss_bytes);
  }
  return floor;
}

ResourceVerdict JudgeResources(const std::vector<Sample>& samples,
                               absl::Duration warm_up) {
  ResourceVerdict verdict;
  auto start = std::find_if(samples.begin(), samples.end(),
                            [&](const Sample& s) { return s.at >= warm_up; });
  const size_t count = static_cast<size_t>(samples.end() - start);
  if (count < 3) {
    verdict.failures.push_back(
        absl::StrCat("only ", count, " samples after warm-up: run longer than ",
                     absl::FormatDuration(warm_up)));
    return verdict;
  }
  const auto third = start + static_cast<ptrdiff_t>(count / 3);
  const auto two_thirds = start + static_cast<ptrdiff_t>(2 * count / 3);
  const int64_t first = FloorRss(start, third);
  const int64_t middle = FloorRss(third, two_thirds);
  const int64_t last = FloorRss(two_thirds, samples.end());
  const ProcessResources& begin_fds = start->resources;
  const ProcessResources& end_fds = samples.back().resources;
  const int other_begin = begin_fds.open_fds - begin_fds.table_fds;
  const int other_end = end_fds.open_fds - end_fds.table_fds;
  verdict.summary = absl::StrFormat(
      "RSS floors by third after %s warm-up: %.1f, %.1f, %.1f MiB; fds "
      "%d (%d tables) -> %d (%d tables)",
      absl::FormatDuration(warm_up), MiB(first), MiB(middle), MiB(last),
      begin_fds.open_fds, begin_fds.table_fds, end_fds.open_fds,
      end_fds.table_fds);
  if (!kJudgeRss) {
    absl::StrAppend(&verdict.summary,
                    " (sanitizer build: RSS reported, not judged)");
  } else if (last - first > kRssHardBound) {
    verdict.failures.push_back(
        absl::StrFormat("RSS grew by %.1f MiB (bound %.0f MiB)",
                        MiB(last - first), MiB(kRssHardBound)));
  }
  if (kJudgeRss && last - middle > kRssRisingBound &&
      2 * (last - middle) >= middle - first) {
    verdict.failures.push_back(
        absl::StrFormat("RSS keeps rising: +%.1f MiB then +%.1f MiB per third",
                        MiB(middle - first), MiB(last - middle)));
  }
  if (other_end - other_begin > kFdGrowthBound) {
    verdict.failures.push_back(
        absl::StrCat("descriptors other than table files grew from ",
                     other_begin, " to ", other_end));
  }
  return verdict;
}

// ---------------------------------------------------------------------------

TEST(SoakTest,
     MixedTrafficForTheConfiguredTimeKeepsEveryPromiseAndBoundedResources) {
  const absl::Duration duration =
      absl::Seconds(EnvInt("REFERRAL_SOAK_SECONDS", 600));
  const absl::Duration report_every = absl::Seconds(
      EnvInt("REFERRAL_SOAK_REPORT_SECONDS",
             std::max<int64_t>(
                 1, std::min<int64_t>(60, duration / absl::Seconds(4)))));
  const double per_second =
      static_cast<double>(EnvInt("REFERRAL_SOAK_SUBMITS_PER_SECOND", 60));
  const uint64_t seed = ChooseSeed();
  const absl::Duration warm_up = std::min(report_every, duration / 4);
  // About fifteen samples per report interval.
  const absl::Duration sample_every =
      std::max(absl::Seconds(1), report_every / 15);
  std::printf(
      "soak: seed %llu (REFERRAL_SOAK_SEED=%llu to replay), %s of load, "
      "report every %s, %.0f submissions/s offered, %d agencies, %d triage "
      "workers, leases %d-%d s\n",
      static_cast<unsigned long long>(seed),
      static_cast<unsigned long long>(seed),
      absl::FormatDuration(duration).c_str(),
      absl::FormatDuration(report_every).c_str(), per_second, kAgencies,
      kTriageWorkers, kMinLeaseSeconds, kMaxLeaseSeconds);
  std::fflush(stdout);
  SCOPED_TRACE(absl::StrCat("REFERRAL_SOAK_SEED=", seed));

  TempDir dir;
  auto started_broker = BrokerProcess::Start({
      .data_dir = dir.Sub("data"),
      // Verification reads every referral: the per-principal rate limit is
      // for runaway clients, not for this test.
      .flags = {"--lease_check_ms=50", "--shutdown_grace_seconds=1",
                absl::StrCat("--max_deliveries=", kMaxDeliveries),
                "--rate_limit_per_second=1000000",
                "--rate_limit_burst=1000000"},
      .log_file = dir.Sub("broker.log"),
  });
  ASSERT_TRUE(started_broker.ok()) << started_broker.status();
  BrokerProcess& broker = **started_broker;
  BrokerClients clients(broker.address());

  Ledger ledger;
  std::mt19937_64 rng(seed);
  std::atomic<bool> stop{false};
  absl::Notification stop_acknowledger;
  std::atomic<int> next_n{0};
  std::vector<std::thread> threads;
  for (int a = 0; a < kAgencies; ++a) {
    threads.emplace_back(AgencyLoop, broker.address(), a,
                         per_second / kAgencies, rng(), std::ref(next_n),
                         std::cref(stop), std::ref(ledger));
  }
  for (int t = 0; t < kTriageWorkers; ++t) {
    threads.emplace_back(TriageLoop, broker.address(),
                         absl::StrCat("soak.worker.", t), rng(),
                         std::cref(stop), std::ref(ledger));
  }
  threads.emplace_back(AcknowledgerLoop, broker.address(),
                       std::ref(stop_acknowledger), std::ref(ledger));

  // The load runs for `duration`: this loop is the clock of the run, so it
  // waits for times, not conditions.
  const absl::Time load_start = absl::Now();
  std::vector<Sample> samples;
  double expiries_before = 0, calls_before = 0;
  absl::Time last_report = load_start;
  for (absl::Time next_sample = load_start + sample_every;;
       next_sample += sample_every) {
    absl::SleepFor(next_sample - absl::Now());
    const absl::Time now = absl::Now();
    auto resources = ReadProcessResources(broker.pid());
    if (!resources.ok()) {
      // The broker is gone: stop the load (the threads must be joined
      // before any ASSERT can leave this test).
      ADD_FAILURE() << resources.status();
      break;
    }
    samples.push_back({now - load_start, *resources});
    const bool done = now - load_start >= duration;
    if (now - last_report >= report_every || done) {
      const double seconds = absl::ToDoubleSeconds(now - last_report);
      const double expiries =
          ScrapeSum(broker, "referral_lease_expiries_total");
      const double calls = ScrapeSum(broker, "grpc_server_handled_total");
      int64_t backlog = 0, claimed = 0;
      const v1::GetQueueStatsResponse stats = QueueStats(clients);
      for (const auto& queue : stats.queues()) {
        backlog += queue.ready_count();
        claimed += queue.claimed_count();
      }
      auto rate = [seconds](Counter& c) {
        return static_cast<double>(c.interval.exchange(0)) / seconds;
      };
      std::printf(
          "soak %4.0fs: per second submits %.1f resubmits %.1f decides %.1f "
          "releases %.1f abandons %.1f expiries %.1f outcome acks %.1f; "
          "ready %lld claimed %lld; broker calls %.0f/s, RSS %.1f MiB, fds %d "
          "(%d tables)\n",
          absl::ToDoubleSeconds(now - load_start), rate(ledger.submits),
          rate(ledger.resubmits), rate(ledger.decides), rate(ledger.releases),
          rate(ledger.abandons), (expiries - expiries_before) / seconds,
          rate(ledger.outcome_acks), static_cast<long long>(backlog),
          static_cast<long long>(claimed), (calls - calls_before) / seconds,
          MiB(resources->rss_bytes), resources->open_fds, resources->table_fds);
      std::fflush(stdout);
      expiries_before = expiries;
      calls_before = calls;
      last_report = now;
    }
    if (done) break;
  }
  stop = true;
  stop_acknowledger.Notify();
  for (auto& thread : threads) thread.join();
  const absl::Duration load_time = absl::Now() - load_start;

  // Resources, judged on the load's samples.
  const ResourceVerdict verdict = JudgeResources(samples, warm_up);
  std::string rss_series;
  for (const Sample& s : samples) {
    absl::StrAppendFormat(&rss_series, "%s%.0f", rss_series.empty() ? "" : " ",
                          MiB(s.resources.rss_bytes));
  }
  std::printf("soak: RSS MiB every %s: %s\nsoak: %s\n",
              absl::FormatDuration(sample_every).c_str(), rss_series.c_str(),
              verdict.summary.c_str());
  std::fflush(stdout);
  for (const std::string& failure : verdict.failures) {
    ADD_FAILURE() << "resources: " << failure;
  }

  // From here on only this thread touches the ledger.
  for (const std::string& violation : ledger.violations) {
    ADD_FAILURE() << "seen by a client: " << violation;
  }
  ASSERT_GT(ledger.acknowledged.size(), 0u);
  ASSERT_GT(ledger.decided.size(), 0u);

  // Every lease is at most kMaxLeaseSeconds long: await the reaper
  // returning every claim left when the load stopped.
  {
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
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
    ASSERT_EQ(claimed_now, 0) << "leases still held 60 s after the load";
  }
  // No table file descriptor outlives its file once the store is quiet
  // (compaction may be finishing: await it).
  {
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    ProcessResources quiet;
    do {
      auto now = ReadProcessResources(broker.pid());
      ASSERT_TRUE(now.ok()) << now.status();
      quiet = *now;
      if (quiet.deleted_table_fds == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (absl::Now() < give_up);
    EXPECT_EQ(quiet.deleted_table_fds, 0)
        << "descriptors left on deleted table files";
  }

  // Each acknowledged key named one referral, and no two keys share one.
  std::set<std::string> all_ids;
  for (const auto& [n, id] : ledger.acknowledged) {
    EXPECT_TRUE(all_ids.insert(id).second)
        << id << " acknowledged for two keys (" << KeyFor(n) << ")";
  }
  const std::vector<std::string> ids(all_ids.begin(), all_ids.end());
  std::map<std::string, std::string> agency_of;
  for (const auto& [n, id] : ledger.acknowledged) agency_of[id] = AgencyFor(n);

  // Every referral's own state and history.
  std::vector<v1::GetReferralStatusResponse> status_of(ids.size());
  ParallelFor(broker.address(), ids.size(), [&](BrokerClients& own, size_t i) {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    v1::GetReferralStatusRequest request;
    request.set_referral_id(ids[i]);
    grpc::Status status =
        own.intake->GetReferralStatus(&context, request, &status_of[i]);
    EXPECT_TRUE(status.ok()) << ids[i] << ": " << status.error_message();
  });
  ASSERT_FALSE(HasFailure()) << "stopping before the state checks";
  std::map<v1::ReferralState, int64_t> by_state;
  int64_t expiries_into_dead_letters = 0;
  int64_t claims_seen = 0, expiries_seen = 0, releases_seen = 0,
          decisions_seen = 0, redelivered = 0;
  std::set<std::string> queued_ids, dead_ids, decided_ids;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& id = ids[i];
    const v1::GetReferralStatusResponse& referral = status_of[i];
    ++by_state[referral.state()];
    ASSERT_GE(referral.history_size(), 2) << id;
    EXPECT_EQ(referral.history(0).stage(), v1::STAGE_RECEIVED) << id;
    EXPECT_EQ(referral.history(1).stage(), v1::STAGE_ROUTED) << id;
    const int claims = CountStage(referral, v1::STAGE_CLAIMED);
    const int expiries = CountStage(referral, v1::STAGE_LEASE_EXPIRED);
    const int releases = CountStage(referral, v1::STAGE_RELEASED);
    const int decisions = CountStage(referral, v1::STAGE_DECIDED);
    claims_seen += claims;
    expiries_seen += expiries;
    releases_seen += releases;
    decisions_seen += decisions;
    if (claims > 1) ++redelivered;
    const bool decided =
        referral.state() == v1::REFERRAL_STATE_DECIDED ||
        referral.state() == v1::REFERRAL_STATE_OUTCOME_ACKNOWLEDGED;
    switch (referral.state()) {
      case v1::REFERRAL_STATE_QUEUED:
        queued_ids.insert(id);
        break;
      case v1::REFERRAL_STATE_DEAD_LETTERED:
        dead_ids.insert(id);
        if (referral.history_size() >= 2 &&
            referral.history(referral.history_size() - 2).stage() ==
                v1::STAGE_LEASE_EXPIRED) {
          ++expiries_into_dead_letters;
        }
        EXPECT_EQ(referral.history(referral.history_size() - 1).stage(),
                  v1::STAGE_DEAD_LETTERED)
            << id;
        EXPECT_EQ(expiries + releases, kMaxDeliveries) << id;
        break;
      case v1::REFERRAL_STATE_DECIDED:
      case v1::REFERRAL_STATE_OUTCOME_ACKNOWLEDGED:
        decided_ids.insert(id);
        break;
      default:
        ADD_FAILURE() << id << " is in state "
                      << v1::ReferralState_Name(referral.state());
    }
    // Every delivery ended in exactly one decision, release or expiry.
    EXPECT_EQ(decisions, decided ? 1 : 0) << id;
    EXPECT_EQ(claims, expiries + releases + decisions) << id;
    // Each delivery, in order, ends before the next one starts, and a lease
    // never runs out early.
    ExpectDeliveriesInOrder(id, referral, absl::Seconds(kMinLeaseSeconds));
    // Decided exactly when a worker was told OK, with that decision; the
    // outcome acknowledged exactly when the agency was told OK.
    auto told = ledger.decided.find(id);
    EXPECT_EQ(decided, told != ledger.decided.end())
        << id << " is " << v1::ReferralState_Name(referral.state());
    if (told != ledger.decided.end()) {
      EXPECT_EQ(referral.decision(), told->second) << id;
    }
    EXPECT_EQ(referral.state() == v1::REFERRAL_STATE_OUTCOME_ACKNOWLEDGED,
              ledger.outcomes_acknowledged.contains(id))
        << id << " is " << v1::ReferralState_Name(referral.state());
  }
  // The histories and the clients' counts tell the same story: each
  // abandoned claim, and each decide or release refused as stale, is
  // exactly one lease expiry.
  EXPECT_EQ(claims_seen, ledger.claims);
  EXPECT_EQ(decisions_seen, static_cast<int64_t>(ledger.decided.size()));
  EXPECT_EQ(releases_seen, ledger.releases.total.load());
  EXPECT_EQ(expiries_seen, ledger.abandons.total.load() + ledger.stale);
  // So do the broker's metrics: every expiry is counted, those that moved
  // the referral to its dead letters too (the soak found that they were
  // not; the store now tells both events).
  const int64_t expiries_metric =
      static_cast<int64_t>(ScrapeSum(broker, "referral_lease_expiries_total"));
  EXPECT_EQ(expiries_metric, expiries_seen)
      << expiries_into_dead_letters << " of the expiries in the histories "
      << "moved the referral to its dead letters";

  // Exactly one place: the queue and dead-letter listings hold each
  // referral once, exactly those in that state, in the queue the referral
  // names; the stats count nothing this test does not know of.
  std::map<std::string, std::string> queue_of;
  for (size_t i = 0; i < ids.size(); ++i) {
    queue_of[ids[i]] = status_of[i].queue();
  }
  ExpectEachReferralInOnePlace(clients, queue_of, queued_ids, dead_ids,
                               static_cast<int64_t>(decided_ids.size()),
                               static_cast<int64_t>(ids.size()));

  // The outcome lists hold exactly the decided, unacknowledged referrals of
  // each agency.
  std::set<std::string> listed_outcomes, expected_outcomes;
  for (const std::string& id : decided_ids) {
    if (!ledger.outcomes_acknowledged.contains(id)) {
      expected_outcomes.insert(id);
    }
  }
  for (int agency = 0; agency < kAgencies; ++agency) {
    std::string token;
    do {
      grpc::ClientContext context;
      context.set_deadline(Deadline());
      v1::ListOutcomesRequest request;
      request.set_agency(AgencyFor(agency));
      request.set_page_size(1000);
      request.set_page_token(token);
      v1::ListOutcomesResponse response;
      grpc::Status status =
          clients.intake->ListOutcomes(&context, request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      for (const v1::Outcome& outcome : response.outcomes()) {
        EXPECT_TRUE(listed_outcomes.insert(outcome.referral_id()).second)
            << outcome.referral_id() << " listed twice";
        EXPECT_EQ(agency_of[outcome.referral_id()], AgencyFor(agency))
            << outcome.referral_id();
      }
      token = response.next_page_token();
    } while (!token.empty());
  }
  EXPECT_EQ(listed_outcomes, expected_outcomes);

  // What came back is claimable: draining every queue claims exactly the
  // ready referrals, each once.
  const std::multiset<std::string> drained =
      DrainEveryQueue(clients, "soak.drain");
  EXPECT_EQ(drained,
            std::multiset<std::string>(queued_ids.begin(), queued_ids.end()));

  grpc::ClientContext audit_context;
  v1::VerifyAuditResponse audit;
  grpc::Status audit_status = clients.operations->VerifyAudit(
      &audit_context, v1::VerifyAuditRequest(), &audit);
  ASSERT_TRUE(audit_status.ok()) << audit_status.error_message();
  EXPECT_TRUE(audit.intact())
      << "first bad seq " << audit.first_bad_seq() << ": " << audit.problem();

  std::printf(
      "soak: seed %llu, %.1f s of load; %zu acknowledged, %lld resubmitted "
      "(all duplicates of their original), %zu distinct stored; %lld claims "
      "(%lld redelivered referrals): %zu decided OK, %lld released, %lld "
      "abandoned, %lld stale decide/release refused, %lld lease expiries "
      "(%lld into dead letters, %lld counted by the metric); "
      "%zu outcomes acknowledged; final: %lld queued, %lld decided, %lld "
      "acknowledged, %lld dead-lettered, %zu drained; audit %llu records "
      "intact=%d\n",
      static_cast<unsigned long long>(seed), absl::ToDoubleSeconds(load_time),
      ledger.acknowledged.size(),
      static_cast<long long>(ledger.resubmits.total.load()), ids.size(),
      static_cast<long long>(ledger.claims),
      static_cast<long long>(redelivered), ledger.decided.size(),
      static_cast<long long>(ledger.releases.total.load()),
      static_cast<long long>(ledger.abandons.total.load()),
      static_cast<long long>(ledger.stale),
      static_cast<long long>(expiries_seen),
      static_cast<long long>(expiries_into_dead_letters),
      static_cast<long long>(expiries_metric),
      ledger.outcomes_acknowledged.size(),
      static_cast<long long>(by_state[v1::REFERRAL_STATE_QUEUED]),
      static_cast<long long>(by_state[v1::REFERRAL_STATE_DECIDED]),
      static_cast<long long>(by_state[v1::REFERRAL_STATE_OUTCOME_ACKNOWLEDGED]),
      static_cast<long long>(by_state[v1::REFERRAL_STATE_DEAD_LETTERED]),
      drained.size(), static_cast<unsigned long long>(audit.records_checked()),
      audit.intact() ? 1 : 0);

  ASSERT_TRUE(broker.Terminate().ok());
}

}  // namespace
}  // namespace referral
