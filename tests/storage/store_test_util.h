// Helpers for the storage tests: a temporary data directory, a fake clock,
// blocking wrappers around the store's callback API and referral builders
// with fictitious data only.
#ifndef REFERRAL_TESTS_STORAGE_STORE_TEST_UTIL_H_
#define REFERRAL_TESTS_STORAGE_STORE_TEST_UTIL_H_

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "storage/referral_store.h"

namespace referral::storage::testing {

// A directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") +
                          "/referral-store-test-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

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

inline absl::StatusOr<SubmitResult> SubmitNow(ReferralStore& store,
                                              SubmitCommand command) {
  return Await<SubmitResult>([&](Done<SubmitResult> done) {
    store.Submit(std::move(command), std::move(done));
  });
}

inline absl::StatusOr<std::vector<StoredReferral>> ClaimNow(
    ReferralStore& store, ClaimCommand command) {
  return Await<std::vector<StoredReferral>>(
      [&](Done<std::vector<StoredReferral>> done) {
        store.Claim(std::move(command), std::move(done));
      });
}

inline absl::StatusOr<absl::Time> ExtendNow(ReferralStore& store,
                                            ExtendCommand command) {
  return Await<absl::Time>([&](Done<absl::Time> done) {
    store.Extend(std::move(command), std::move(done));
  });
}

inline absl::StatusOr<::referral::v1::ReferralState> ReleaseNow(
    ReferralStore& store, ReleaseCommand command) {
  return Await<::referral::v1::ReferralState>(
      [&](Done<::referral::v1::ReferralState> done) {
        store.Release(std::move(command), std::move(done));
      });
}

inline absl::StatusOr<absl::Time> DecideNow(ReferralStore& store,
                                            DecideCommand command) {
  return Await<absl::Time>([&](Done<absl::Time> done) {
    store.Decide(std::move(command), std::move(done));
  });
}

inline absl::StatusOr<AcknowledgeResult> AcknowledgeNow(
    ReferralStore& store, AcknowledgeCommand command) {
  return Await<AcknowledgeResult>([&](Done<AcknowledgeResult> done) {
    store.AcknowledgeOutcome(std::move(command), std::move(done));
  });
}

inline absl::StatusOr<std::string> RequeueNow(ReferralStore& store,
                                              RequeueCommand command) {
  return Await<std::string>([&](Done<std::string> done) {
    store.RequeueDeadLetter(std::move(command), std::move(done));
  });
}

inline absl::StatusOr<int> ExpireNow(ReferralStore& store) {
  return Await<int>(
      [&](Done<int> done) { store.ExpireLeases(std::move(done)); });
}

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
                                const std::string& queue = "front-door") {
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

}  // namespace referral::storage::testing

#endif  // REFERRAL_TESTS_STORAGE_STORE_TEST_UTIL_H_
