// Storage faults on a real broker process:
//   - when fsync or write fails (an LD_PRELOAD shim, tests/faults/, makes
//     every sync, or every write, of a file in the data directory fail with
//     EIO once a trigger file exists), no submission made meanwhile is
//     answered OK, the broker stops reporting SERVING, and after a restart
//     with working storage every referral acknowledged before is there and
//     every refused one lands exactly once when resubmitted with its
//     idempotency key;
//   - a data file damaged while the broker was stopped (one flipped byte in a
//     table file, or in the write-ahead log) makes the broker refuse to
//     start, with a log line naming the file, instead of serving without the
//     damaged records.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "support/broker_process.h"
#include "support/broker_workload.h"
#include "support/sample_referral.h"

namespace referral {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::referral::testing::BrokerClients;
using ::referral::testing::BrokerProcess;
using ::referral::testing::BrokerProcessOptions;
using ::referral::testing::DistinctNhsNumber;
using ::referral::testing::ReadyIds;
using ::referral::testing::SampleReferral;
using ::referral::testing::TempDir;

std::string KeyFor(int n) { return absl::StrCat("faults-", n); }

grpc::Status Submit(BrokerClients& clients, int n,
                    v1::SubmitReferralResponse* response) {
  v1::SubmitReferralRequest request;
  *request.mutable_referral() =
      SampleReferral({.nhs_number = DistinctNhsNumber(n)});
  request.set_idempotency_key(KeyFor(n));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(20));
  return clients.intake->SubmitReferral(&context, request, response);
}

// The broker's overall health on its main port: SERVING, NOT_SERVING, or
// UNKNOWN when the call itself fails (e.g. the process is gone).
HealthCheckResponse::ServingStatus OverallHealth(int port) {
  auto health = Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  HealthCheckResponse response;
  grpc::Status status =
      health->Check(&context, HealthCheckRequest(), &response);
  return status.ok() ? response.status() : HealthCheckResponse::UNKNOWN;
}

bool AwaitHealth(int port, HealthCheckResponse::ServingStatus want) {
  const absl::Time deadline = absl::Now() + absl::Minutes(1);
  while (absl::Now() < deadline) {
    if (OverallHealth(port) == want) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

// Whether `pid` is still running (not exited and waiting to be reaped).
bool IsRunning(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return false;
  // "pid (comm) state ...": the state follows the last ')'.
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() &&
         line[paren + 2] != 'Z';
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// Flips every bit of the byte in the middle of `path`.
void FlipMiddleByte(const std::string& path) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(file) << path;
  file.seekg(0, std::ios::end);
  const std::streamoff middle = file.tellg() / 2;
  file.seekg(middle);
  char byte = 0;
  file.get(byte);
  file.seekp(middle);
  file.put(static_cast<char>(~byte));
  ASSERT_TRUE(file.flush()) << path;
}

// The largest file in `dir` whose name ends with `suffix`.
std::string LargestFile(const std::string& dir, const std::string& suffix) {
  std::string largest;
  uintmax_t size = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!name.ends_with(suffix) || !entry.is_regular_file()) continue;
    if (entry.file_size() > size) {
      size = entry.file_size();
      largest = entry.path().string();
    }
  }
  return largest;
}

// A broker on `dir`/data logging to `dir`/broker.log that stops at once on
// SIGTERM.
BrokerProcessOptions Options(const TempDir& dir) {
  BrokerProcessOptions options;
  options.data_dir = dir.Sub("data");
  options.log_file = dir.Sub("broker.log");
  options.flags = {"--shutdown_drain_seconds=0"};
  return options;
}

// ---------------------------------------------------------------------------

// The disk faults tests/faults/storage_fault_shim.cc injects, each switched
// on by its trigger file.
struct DiskFault {
  const char* name;              // for messages
  const char* trigger_variable;  // the shim's environment variable
};
constexpr DiskFault kFailingFsync{"fsync", "REFERRAL_FAULT_FSYNC_AFTER_FILE"};
constexpr DiskFault kFailingWrite{"write", "REFERRAL_FAULT_WRITE_AFTER_FILE"};

// Submits while `fault` holds for every file in the data directory and
// checks that nothing was acknowledged, the broker says it cannot serve
// until restarted, and after a restart every earlier acknowledged referral
// is there and every refused one lands exactly once.
void ExpectNothingAcknowledgedAndNothingLost(const DiskFault& fault) {
  TempDir dir;
  const std::string trigger = dir.Sub(absl::StrCat(fault.name, "-fails"));
  BrokerProcessOptions options = Options(dir);
  options.env = {absl::StrCat("LD_PRELOAD=", REFERRAL_STORAGE_FAULT_SHIM),
                 absl::StrCat(fault.trigger_variable, "=", trigger),
                 absl::StrCat("REFERRAL_FAULT_DATA_DIR=", options.data_dir)};
  // In AddressSanitizer builds (deploy/sanitize.sh) the preloaded shim comes
  // before the sanitizer's runtime, which the runtime refuses by default.
  const char* asan_options = std::getenv("ASAN_OPTIONS");
  options.env.push_back(
      absl::StrCat("ASAN_OPTIONS=", asan_options != nullptr ? asan_options : "",
                   asan_options != nullptr && *asan_options != '\0' ? ":" : "",
                   "verify_asan_link_order=0"));
  auto broker = BrokerProcess::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  BrokerClients clients((*broker)->address());

  // Acknowledged while syncing works.
  constexpr int kBefore = 20;
  std::map<int, std::string> acknowledged;  // n -> referral id
  std::set<std::string> queues;
  for (int n = 0; n < kBefore; ++n) {
    v1::SubmitReferralResponse response;
    grpc::Status status = Submit(clients, n, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    acknowledged[n] = response.referral_id();
    queues.insert(response.queue());
  }

  // From now on every sync (or write) in the data directory fails.
  { std::ofstream(trigger) << "on\n"; }
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10;
  absl::Mutex mutex;
  std::vector<std::string> answered_ok;  // must stay empty
  std::map<int, int> refused_codes;      // n -> status code
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      BrokerClients own((*broker)->address());
      for (int i = 0; i < kPerThread; ++i) {
        const int n = kBefore + t * kPerThread + i;
        v1::SubmitReferralResponse response;
        grpc::Status status = Submit(own, n, &response);
        absl::MutexLock lock(&mutex);
        if (status.ok()) {
          answered_ok.push_back(
              absl::StrCat(KeyFor(n), " -> ", response.referral_id()));
        } else {
          refused_codes[n] = status.error_code();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_TRUE(answered_ok.empty())
      << "acknowledged although nothing could be synced: "
      << answered_ok.front();
  ASSERT_EQ(refused_codes.size(), kThreads * kPerThread);
  for (const auto& [n, code] : refused_codes) {
    // UNAVAILABLE: the store could not commit; nothing else is acceptable
    // for a valid referral.
    EXPECT_EQ(code, grpc::StatusCode::UNAVAILABLE) << KeyFor(n);
  }
  // It does not carry on as if nothing happened: it says why in its log and
  // tells load balancers it is not serving. It keeps running (reads that
  // need no write still work), but RocksDB treats a failed sync as fatal,
  // so the broker says it must be restarted even once syncing works again.
  EXPECT_TRUE(testing::WaitForFileToContain(
      options.log_file, "store_not_writable", absl::Seconds(10)));
  EXPECT_TRUE(AwaitHealth((*broker)->port(), HealthCheckResponse::NOT_SERVING));
  EXPECT_TRUE(IsRunning((*broker)->pid()));
  std::filesystem::remove(trigger);
  // The next commit attempts to resume (at most once a second) and finds
  // it cannot; a submission until then is refused all the same.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  grpc::Status refused;
  do {
    v1::SubmitReferralResponse response;
    refused = Submit(clients, kBefore, &response);
    ASSERT_FALSE(refused.ok())
        << "accepted a write without a restart after a failed sync";
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  } while (refused.error_message().find("restart the broker") ==
               std::string::npos &&
           absl::Now() < deadline);
  EXPECT_NE(refused.error_message().find("restart the broker"),
            std::string::npos)
      << refused.error_message();
  EXPECT_TRUE(testing::WaitForFileToContain(
      options.log_file, "restart the broker", absl::Seconds(10)));

  // Restart with SIGKILL, so that only what was synced counts.
  (*broker)->Kill();
  broker = BrokerProcess::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  BrokerClients after((*broker)->address());
  EXPECT_TRUE(AwaitHealth((*broker)->port(), HealthCheckResponse::SERVING));

  // Every acknowledged referral is there under its key.
  std::map<std::string, int> owner;  // referral id -> n
  for (const auto& [n, id] : acknowledged) {
    owner[id] = n;
    v1::SubmitReferralResponse response;
    grpc::Status status = Submit(after, n, &response);
    ASSERT_TRUE(status.ok()) << KeyFor(n) << ": " << status.error_message();
    EXPECT_TRUE(response.duplicate()) << KeyFor(n);
    EXPECT_EQ(response.referral_id(), id) << KeyFor(n);
  }
  // Each refused submission lands exactly once when resubmitted. A refused
  // write may still have reached the log before its sync failed, and is
  // then replayed at restart: the resubmission reports it as a duplicate.
  int had_landed = 0;
  for (const auto& [n, code] : refused_codes) {
    v1::SubmitReferralResponse first, second;
    grpc::Status status = Submit(after, n, &first);
    ASSERT_TRUE(status.ok()) << KeyFor(n) << ": " << status.error_message();
    if (first.duplicate()) ++had_landed;
    status = Submit(after, n, &second);
    ASSERT_TRUE(status.ok()) << KeyFor(n) << ": " << status.error_message();
    EXPECT_TRUE(second.duplicate()) << KeyFor(n);
    EXPECT_EQ(second.referral_id(), first.referral_id()) << KeyFor(n);
    EXPECT_TRUE(owner.emplace(first.referral_id(), n).second)
        << KeyFor(n) << " shares " << first.referral_id() << " with "
        << KeyFor(owner[first.referral_id()]);
    queues.insert(first.queue());
  }
  // The queues hold exactly those referrals, each once.
  std::map<std::string, int> listed;
  for (const std::string& queue : queues) {
    for (const std::string& id : ReadyIds(after, queue)) ++listed[id];
  }
  EXPECT_EQ(listed.size(), owner.size());
  for (const auto& [id, count] : listed) {
    EXPECT_EQ(count, 1) << id;
    EXPECT_TRUE(owner.contains(id)) << id << " listed but never submitted";
  }
  std::printf(
      "failing %s: %zu acknowledged before, %zu refused meanwhile (%d of "
      "them had reached the log and were replayed at restart)\n",
      fault.name, acknowledged.size(), refused_codes.size(), had_landed);
}

TEST(StorageFaultsTest, FailingFsyncIsNeverAcknowledgedAndNothingIsLost) {
  ExpectNothingAcknowledgedAndNothingLost(kFailingFsync);
}

TEST(StorageFaultsTest, FailingWriteIsNeverAcknowledgedAndNothingIsLost) {
  ExpectNothingAcknowledgedAndNothingLost(kFailingWrite);
}

// Stores some referrals through a broker and stops it cleanly, which
// flushes them into table files.
void FillAndStop(const BrokerProcessOptions& options, int count) {
  auto broker = BrokerProcess::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  BrokerClients clients((*broker)->address());
  for (int n = 0; n < count; ++n) {
    v1::SubmitReferralResponse response;
    grpc::Status status = Submit(clients, n, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  auto exit_code = (*broker)->Terminate();
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  ASSERT_EQ(*exit_code, 0);
}

TEST(StorageFaultsTest, DamagedTableFileIsRefusedAtStartNamingTheFile) {
  TempDir dir;
  BrokerProcessOptions options = Options(dir);
  FillAndStop(options, 200);
  const std::string table = LargestFile(options.data_dir, ".sst");
  ASSERT_FALSE(table.empty()) << "no table file was written";
  FlipMiddleByte(table);

  auto broker = BrokerProcess::Start(options);
  EXPECT_FALSE(broker.ok()) << "served from a damaged store";
  const std::string log = ReadFile(options.log_file);
  EXPECT_NE(log.find("broker_start_failed"), std::string::npos) << log;
  EXPECT_NE(log.find("data directory is damaged"), std::string::npos) << log;
  EXPECT_NE(log.find(std::filesystem::path(table).filename().string()),
            std::string::npos)
      << "the log does not name " << table << ":\n"
      << log;
}

TEST(StorageFaultsTest, DamagedEncryptedTableFileIsRefusedAtStart) {
  TempDir dir;
  const std::string key_file = dir.Sub("store.key");
  {
    std::ofstream key(key_file);
    key << std::string(64, 'a') << "\n";  // 32 bytes, hex
  }
  std::filesystem::permissions(
      key_file,
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  BrokerProcessOptions options = Options(dir);
  options.flags.push_back(absl::StrCat("--encryption_key_file=", key_file));
  FillAndStop(options, 200);
  const std::string table = LargestFile(options.data_dir, ".sst");
  ASSERT_FALSE(table.empty()) << "no table file was written";
  FlipMiddleByte(table);

  auto broker = BrokerProcess::Start(options);
  EXPECT_FALSE(broker.ok()) << "served from a damaged store";
  const std::string log = ReadFile(options.log_file);
  EXPECT_NE(log.find("data directory is damaged"), std::string::npos) << log;
  EXPECT_NE(log.find(std::filesystem::path(table).filename().string()),
            std::string::npos)
      << "the log does not name " << table << ":\n"
      << log;
}

TEST(StorageFaultsTest, DamagedWriteAheadLogIsRefusedRatherThanTruncated) {
  TempDir dir;
  BrokerProcessOptions options = Options(dir);
  auto broker = BrokerProcess::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  {
    BrokerClients clients((*broker)->address());
    for (int n = 0; n < 200; ++n) {
      v1::SubmitReferralResponse response;
      grpc::Status status = Submit(clients, n, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
  }
  // SIGKILL: nothing is flushed, the acknowledged referrals live only in
  // the write-ahead log.
  (*broker)->Kill();
  const std::string log_file = LargestFile(options.data_dir, ".log");
  ASSERT_FALSE(log_file.empty()) << "no write-ahead log";
  FlipMiddleByte(log_file);

  // Replaying up to the damage and dropping the rest would lose referrals
  // that were acknowledged: the broker must refuse instead.
  broker = BrokerProcess::Start(options);
  EXPECT_FALSE(broker.ok()) << "started without the referrals after the "
                               "damaged write-ahead-log record";
  const std::string log = ReadFile(options.log_file);
  EXPECT_NE(log.find("broker_start_failed"), std::string::npos) << log;
  EXPECT_NE(log.find("data directory is damaged"), std::string::npos) << log;
}

}  // namespace
}  // namespace referral
