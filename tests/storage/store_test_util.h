// Helpers for the storage tests: a temporary data directory, a fake clock,
// a blocking wrapper around the store's callback API, referral builders with
// fictitious data only, and StoreTest, the fixture most store tests share.
#ifndef REFERRAL_TESTS_STORAGE_STORE_TEST_UTIL_H_
#define REFERRAL_TESTS_STORAGE_STORE_TEST_UTIL_H_

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/fault_injection_fs.h"
#include "storage/referral_store.h"
#include "support/broker_process.h"

namespace referral::storage::testing {

inline constexpr char kQueue[] = "front-door";

// A directory under $TMPDIR (or /tmp), removed with everything in it.
using TempDir = ::referral::testing::TempDir;

// A clock the test moves by hand; safe to read from the store's threads.
class FakeClock {
 public:
  explicit FakeClock(
      absl::Time start = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 9, 0, 0),
                                         absl::UTCTimeZone()))
      : now_(start) {}

  absl::Time Now() const {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

// Calls `start(done)` and blocks until `done` runs; returns its result.
template <typename T, typename Start>
absl::StatusOr<T> Await(Start start) {
  absl::Notification finished;
  std::optional<absl::StatusOr<T>> result;
  start([&](absl::StatusOr<T> r) {
    result = std::move(r);
    finished.Notify();
  });
  finished.WaitForNotification();
  return *std::move(result);
}

// Commits `command` and waits for its result.
template <typename Command>
absl::StatusOr<typename Command::Result> CommitNow(ReferralStore& store,
                                                   Command command) {
  using Result = typename Command::Result;
  return Await<Result>([&](Done<Result> done) {
    store.Commit(std::move(command), std::move(done));
  });
}

inline std::vector<std::string> Ids(
    const std::vector<StoredReferral>& records) {
  std::vector<std::string> ids;
  for (const auto& record : records) ids.push_back(record.referral_id());
  return ids;
}

// An encryption key file of 64 `digit`s, mode 0600.
inline void WriteKeyFile(const std::string& path, char digit) {
  std::ofstream(path) << std::string(64, digit) << "\n";
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
}

inline std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A data directory opened with RocksDB directly (the store closed), every
// column family by name: what is on disk, and a way to tamper with it.
class RawDatabase {
 public:
  RawDatabase(const std::string& path, bool read_only) {
    rocksdb::Status s =
        rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const std::string& name : names_) {
      descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DB* raw = nullptr;
    s = read_only ? rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path,
                                                 descriptors, &handles_, &raw)
                  : rocksdb::DB::Open(rocksdb::DBOptions(), path, descriptors,
                                      &handles_, &raw);
    EXPECT_TRUE(s.ok()) << s.ToString();
    db_.reset(raw);
  }
  ~RawDatabase() {
    for (rocksdb::ColumnFamilyHandle* handle : handles_) {
      EXPECT_TRUE(db_->DestroyColumnFamilyHandle(handle).ok());
    }
    if (db_ != nullptr) {
      EXPECT_TRUE(db_->Close().ok());
    }
  }
  RawDatabase(const RawDatabase&) = delete;
  RawDatabase& operator=(const RawDatabase&) = delete;

  bool ok() const { return db_ != nullptr; }
  rocksdb::DB& db() { return *db_; }
  // The family `name`, or null when the store has none of that name.
  rocksdb::ColumnFamilyHandle* family(const std::string& name) {
    for (size_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name) return handles_[i];
    }
    return nullptr;
  }

 private:
  std::vector<std::string> names_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

// A small referral about one fictitious child (999 test-range NHS number).
inline ::referral::v1::Referral MakeReferral(
    const std::string& description = "Concern raised at school.") {
  ::referral::v1::Referral referral;
  referral.mutable_referrer()->set_agency_type(
      ::referral::v1::AGENCY_TYPE_SCHOOL);
  referral.mutable_referrer()->set_agency_id("test-school");
  ::referral::v1::Child* child = referral.add_children();
  child->set_given_name("Test");
  child->set_family_name("Child");
  child->set_nhs_number("9990000018");
  referral.add_concerns(::referral::v1::CONCERN_CATEGORY_NEGLECT);
  referral.set_description(description);
  return referral;
}

// A submit to `queue` from agency "test-school", received now.
inline SubmitCommand MakeSubmit(const std::string& idempotency_key,
                                absl::Time received_at,
                                const std::string& queue = kQueue) {
  SubmitCommand command;
  command.agency_id = "test-school";
  command.idempotency_key = idempotency_key;
  command.referral = MakeReferral();
  command.received_at = received_at;
  command.placement.queue = queue;
  command.placement.band = ::referral::v1::PRIORITY_BAND_STANDARD;
  command.placement.due_at = received_at + absl::Hours(24);
  command.placement.routing_rule = "default";
  command.actor = "agency:test-school";
  return command;
}

// A store in a temporary directory on a fake clock, with no reaper (tests
// commit ExpireLeasesCommand themselves) and a file system that can inject
// faults, and the calls tests make of it.
class StoreTest : public ::testing::Test {
 protected:
  // Closes the store before the fixture's members go, as its last commits
  // may still report into them.
  void TearDown() override { Close(); }

  // What Open() opens with; fixtures add to it.
  virtual StoreOptions Options() { return OptionsFor(dir_.path()); }
  StoreOptions OptionsFor(const std::string& path) {
    StoreOptions options;
    options.path = path;
    options.clock = [this] { return clock_.Now(); };
    options.lease_check_interval = absl::ZeroDuration();
    options.file_system = faults_;
    return options;
  }

  void Open() { Open(Options()); }
  void Open(StoreOptions options) {
    store_.reset();  // closes cleanly first
    auto store = ReferralStore::Open(std::move(options));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  void Close() { store_.reset(); }

  // Commits `command`, expecting it to succeed; returns the record.
  StoredReferral Submit(SubmitCommand command) {
    auto result = CommitNow(*store_, std::move(command));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->record : StoredReferral();
  }
  StoredReferral Submit(const std::string& key) {
    return Submit(MakeSubmit(key, clock_.Now()));
  }

  // Enqueues every command back to back (so that they usually share a group
  // commit) and waits for them all; results in the order they completed.
  std::vector<absl::StatusOr<SubmitResult>> SubmitAtOnce(
      std::vector<SubmitCommand> commands) {
    absl::BlockingCounter finished(static_cast<int>(commands.size()));
    absl::Mutex mu;
    std::vector<absl::StatusOr<SubmitResult>> results;
    for (SubmitCommand& command : commands) {
      store_->Commit(std::move(command),
                     [&](absl::StatusOr<SubmitResult> result) {
                       {
                         absl::MutexLock lock(&mu);
                         results.push_back(std::move(result));
                       }
                       // Outside the lock: once the count reaches zero this
                       // returns and destroys mu.
                       finished.DecrementCount();
                     });
    }
    finished.Wait();
    return results;
  }

  ClaimCommand MakeClaim(int max, absl::Duration lease = absl::Minutes(30),
                         const std::string& worker = "worker-1",
                         const std::string& queue = kQueue) {
    return ClaimCommand{.queue = queue,
                        .max = max,
                        .lease = lease,
                        .worker = worker,
                        .actor = "triage:" + worker,
                        .audit = {}};
  }
  // Claims up to `max` from `queue`, expecting the claim to succeed.
  std::vector<StoredReferral> Claim(int max,
                                    absl::Duration lease = absl::Minutes(30),
                                    const std::string& worker = "worker-1",
                                    const std::string& queue = kQueue) {
    auto claimed = CommitNow(*store_, MakeClaim(max, lease, worker, queue));
    EXPECT_TRUE(claimed.ok()) << claimed.status();
    return claimed.ok() ? *std::move(claimed) : std::vector<StoredReferral>();
  }

  DecideCommand MakeDecide(
      const StoredReferral& claimed,
      ::referral::v1::Decision decision = ::referral::v1::DECISION_EARLY_HELP) {
    return DecideCommand{.referral_id = claimed.referral_id(),
                         .lease_token = claimed.lease().token(),
                         .decision = decision,
                         .rationale = "Needs early help.",
                         .feedback = "Referred to early help.",
                         .actor = "triage:worker-1",
                         .audit = {}};
  }
  absl::StatusOr<absl::Time> Decide(
      const StoredReferral& claimed,
      ::referral::v1::Decision decision = ::referral::v1::DECISION_EARLY_HELP) {
    return CommitNow(*store_, MakeDecide(claimed, decision));
  }

  // The counts of one queue now (a failure when the store has none).
  QueueCounts Counts(const std::string& queue = kQueue) {
    for (QueueCounts& counts :
         store_->GetCounts({.now = clock_.Now(), .queues = true}).queues) {
      if (counts.queue == queue) return counts;
    }
    ADD_FAILURE() << "no counts for " << queue;
    return QueueCounts();
  }
  std::vector<OutcomeBacklog> Backlog(absl::Duration acknowledge_within) {
    return store_
        ->GetCounts({.now = clock_.Now(),
                     .outcomes = true,
                     .acknowledge_within = acknowledge_within})
        .outcomes;
  }

  // A listing page, expecting the read to succeed.
  ReferralPage Page(Listing listing, const std::string& key = kQueue,
                    int page_size = 1000, const std::string& page_token = "") {
    auto page = store_->List(listing, key, page_size, page_token);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? *std::move(page) : ReferralPage();
  }

  TempDir dir_;
  FakeClock clock_;
  std::shared_ptr<FaultInjectionFileSystem> faults_ =
      FaultInjectionFileSystem::Create();
  std::unique_ptr<ReferralStore> store_;
};

}  // namespace referral::storage::testing

#endif  // REFERRAL_TESTS_STORAGE_STORE_TEST_UTIL_H_
