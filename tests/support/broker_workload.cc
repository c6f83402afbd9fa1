#include "support/broker_workload.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "support/sample_referral.h"

namespace referral::testing {

std::string DistinctNhsNumber(int n) {
  for (int base = 2 * n; base <= 2 * n + 1; ++base) {
    const std::string digits = absl::StrCat(999000000 + base);
    int sum = 0;
    for (int i = 0; i < 9; ++i) sum += (digits[i] - '0') * (10 - i);
    const int check = (11 - sum % 11) % 11;
    // Two neighbouring bases differ by 2 in the weighted sum, so at most
    // one of them has the never-valid check value 10.
    if (check != 10) return absl::StrCat(digits, check);
  }
  return "";
}

std::string DistinctGivenName(int n) {
  std::string name = "Test";
  do {
    name.push_back(static_cast<char>('a' + n % 26));
    n /= 26;
  } while (n > 0);
  return name;
}

v1::Referral WorkloadReferral(const std::string& agency_id, int n) {
  const int child = n % kDistinctChildren;
  return SampleReferral({
      .agency_id = agency_id,
      .immediate_risk = n % 7 == 0,
      .nhs_number = DistinctNhsNumber(child),
      .given_name = DistinctGivenName(child),
      .postcode = n % 5 == 0 ? "CB1 1AA" : "PE1 2AB",
  });
}

v1::Decision WorkloadDecision(const std::string& referral_id) {
  return static_cast<v1::Decision>(1 +
                                   std::hash<std::string>{}(referral_id) % 7);
}

void ParallelFor(const std::string& address, size_t count,
                 const std::function<void(BrokerClients&, size_t)>& fn,
                 int threads) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      BrokerClients clients(address);
      for (size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
        fn(clients, i);
      }
    });
  }
  for (auto& worker : workers) worker.join();
}

v1::GetQueueStatsResponse QueueStats(BrokerClients& clients) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  v1::GetQueueStatsResponse stats;
  grpc::Status status = clients.operations->GetQueueStats(
      &context, v1::GetQueueStatsRequest(), &stats);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return status.ok() ? stats : v1::GetQueueStatsResponse();
}

std::vector<std::string> DeadLetterIds(BrokerClients& clients,
                                       const std::string& queue) {
  std::vector<std::string> ids;
  std::string token;
  do {
    grpc::ClientContext context;
    v1::ListDeadLettersRequest request;
    request.set_queue(queue);
    request.mutable_page()->set_page_size(500);
    request.mutable_page()->set_page_token(token);
    v1::ListDeadLettersResponse response;
    grpc::Status status =
        clients.operations->ListDeadLetters(&context, request, &response);
    EXPECT_TRUE(status.ok()) << queue << ": " << status.error_message();
    if (!status.ok()) break;
    for (const auto& entry : response.dead_letters()) {
      ids.push_back(entry.referral_id());
    }
    token = response.next_page_token();
  } while (!token.empty());
  return ids;
}

void ExpectEachReferralInOnePlace(
    BrokerClients& clients, const std::map<std::string, std::string>& queue_of,
    const std::set<std::string>& queued_ids,
    const std::set<std::string>& dead_ids, int64_t decided, int64_t total) {
  const v1::GetQueueStatsResponse stats = QueueStats(clients);
  std::multiset<std::string> listed_ready, listed_dead;
  int64_t stats_ready = 0, stats_dead = 0, stats_decided = 0;
  for (const auto& queue : stats.queues()) {
    stats_ready += queue.ready_count();
    stats_dead += queue.dead_letter_count();
    stats_decided += queue.decisions_in_window();
    EXPECT_EQ(queue.claimed_count(), 0) << queue.queue();
    const std::vector<std::string> ready = ReadyIds(clients, queue.queue());
    const std::vector<std::string> dead = DeadLetterIds(clients, queue.queue());
    EXPECT_EQ(static_cast<int64_t>(ready.size()), queue.ready_count())
        << queue.queue();
    EXPECT_EQ(static_cast<int64_t>(dead.size()), queue.dead_letter_count())
        << queue.queue();
    for (const std::string& id : ready) {
      listed_ready.insert(id);
      EXPECT_EQ(queue_of.at(id), queue.queue()) << id;
    }
    for (const std::string& id : dead) {
      listed_dead.insert(id);
      EXPECT_EQ(queue_of.at(id), queue.queue()) << id;
    }
  }
  for (const std::string& id : listed_ready) {
    EXPECT_EQ(listed_ready.count(id), 1u) << id << " is listed twice";
    EXPECT_TRUE(queued_ids.contains(id)) << id << " listed but not QUEUED";
    EXPECT_FALSE(listed_dead.contains(id)) << id << " ready and dead";
  }
  for (const std::string& id : listed_dead) {
    EXPECT_EQ(listed_dead.count(id), 1u) << id << " dead-lettered twice";
    EXPECT_TRUE(dead_ids.contains(id)) << id;
  }
  EXPECT_EQ(listed_ready.size(), queued_ids.size());
  EXPECT_EQ(listed_dead.size(), dead_ids.size());
  EXPECT_EQ(stats_decided, decided);
  EXPECT_EQ(stats_ready + stats_dead + stats_decided, total)
      << "the broker holds referrals no client was told of, or lost some";
}

std::multiset<std::string> DrainEveryQueue(BrokerClients& clients,
                                           const std::string& worker) {
  std::multiset<std::string> drained;
  const v1::GetQueueStatsResponse stats = QueueStats(clients);
  for (const auto& queue : stats.queues()) {
    for (;;) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(30));
      v1::ClaimReferralsRequest request;
      request.set_queue(queue.queue());
      request.set_max(100);
      request.set_lease_seconds(600);
      request.set_worker(worker);
      v1::ClaimReferralsResponse response;
      grpc::Status status =
          clients.triage->ClaimReferrals(&context, request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok() || response.claims().empty()) break;
      for (const auto& claim : response.claims()) {
        drained.insert(claim.referral_id());
      }
    }
  }
  return drained;
}

void ExpectDeliveriesInOrder(const std::string& id,
                             const v1::GetReferralStatusResponse& referral,
                             absl::Duration min_lease) {
  absl::Time claimed_at = absl::InfinitePast();
  bool holding = false;
  int attempt = 0;
  for (const auto& event : referral.history()) {
    const absl::Time at = absl::FromUnixSeconds(event.at().seconds()) +
                          absl::Nanoseconds(event.at().nanos());
    switch (event.stage()) {
      case v1::STAGE_CLAIMED:
        EXPECT_FALSE(holding) << id << ": claimed while under lease";
        EXPECT_EQ(event.delivery_attempt(), ++attempt) << id;
        holding = true;
        claimed_at = at;
        break;
      case v1::STAGE_LEASE_EXPIRED:
        EXPECT_TRUE(holding) << id << ": lease expired without a claim";
        EXPECT_GE(at - claimed_at, min_lease)
            << id << ": returned before its lease ran out";
        holding = false;
        break;
      case v1::STAGE_RELEASED:
      case v1::STAGE_DECIDED:
        EXPECT_TRUE(holding) << id << ": released or decided unclaimed";
        holding = false;
        break;
      default:
        break;
    }
  }
  EXPECT_FALSE(holding) << id << ": still held after every lease ran out";
}

int CountStage(const v1::GetReferralStatusResponse& referral, v1::Stage stage) {
  return static_cast<int>(
      std::count_if(referral.history().begin(), referral.history().end(),
                    [stage](const auto& e) { return e.stage() == stage; }));
}

absl::StatusOr<ProcessResources> ReadProcessResources(pid_t pid) {
  ProcessResources resources;
  const std::string proc = absl::StrCat("/proc/", pid);
  std::ifstream status(proc + "/status");
  if (!status) return absl::NotFoundError(absl::StrCat(proc, ": no process"));
  bool found_rss = false;
  for (std::string line; std::getline(status, line);) {
    // "VmRSS:	  123456 kB"
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "VmRSS:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    if (!absl::ConsumeSuffix(&rest, " kB")) break;
    int64_t kib = 0;
    if (!absl::SimpleAtoi(rest, &kib)) break;
    resources.rss_bytes = kib * 1024;
    found_rss = true;
  }
  if (!found_rss) {
    return absl::DataLossError(absl::StrCat(proc, "/status: no VmRSS"));
  }
  std::error_code error;
  for (const auto& entry :
       std::filesystem::directory_iterator(proc + "/fd", error)) {
    ++resources.open_fds;
    // A descriptor closed between listing and reading is simply not
    // classified.
    std::error_code ignored;
    const std::string target =
        std::filesystem::read_symlink(entry.path(), ignored).string();
    if (absl::StrContains(target, ".sst")) {
      ++resources.table_fds;
      if (absl::EndsWith(target, " (deleted)")) ++resources.deleted_table_fds;
    }
  }
  if (error) {
    return absl::UnavailableError(absl::StrCat(proc, "/fd: ", error.message()));
  }
  return resources;
}

}  // namespace referral::testing
