// Test support for system tests that drive a mixed workload against the
// real broker and then read its whole state back (the crash-consistency
// harness and the soak): distinct fictitious children, parallel read-back,
// the operations listings, and the broker process's resources as the kernel
// reports them.
#ifndef REFERRAL_TESTS_SUPPORT_BROKER_WORKLOAD_H_
#define REFERRAL_TESTS_SUPPORT_BROKER_WORKLOAD_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "referral/v1/broker.pb.h"
#include "support/sample_referral.h"

namespace referral::testing {

// Distinct referrals must not link to each other as repeated concerns, so
// each submission number gets its own child.
inline constexpr int kDistinctChildren = 500000;
// A test-range NHS number (999 prefix, never issued) with a valid Modulus 11
// check digit; distinct for distinct n in [0, kDistinctChildren).
std::string DistinctNhsNumber(int n);
// "Test" followed by letters spelling n: distinct for distinct n >= 0.
std::string DistinctGivenName(int n);

// The work queues of the shipped routing file that WorkloadReferral's
// referrals reach (immediate risk, out of area, the rest).
inline constexpr const char* kWorkQueues[] = {"ifd-triage", "ifd-urgent",
                                              "out-of-area"};
// Submission n of a system test's agency `agency_id`: a pure function of n,
// so an in-doubt or repeated submission sends exactly the referral its
// idempotency key belongs to. Its own child (n modulo kDistinctChildren), so
// none links to another as a repeated concern; every 7th is immediate risk,
// every 5th out of area.
v1::Referral WorkloadReferral(const std::string& agency_id, int n);
// The decision a triage worker records for a referral: fixed per referral, so
// a decision re-made after an in-doubt RecordDecision is the same one.
v1::Decision WorkloadDecision(const std::string& referral_id);

// Runs fn(clients, i) for i in [0, count) on `threads` threads, each with
// its own clients of the broker at `address` (every read is audited with a
// synced write, so concurrent reads share the store's group commit).
void ParallelFor(const std::string& address, size_t count,
                 const std::function<void(BrokerClients&, size_t)>& fn,
                 int threads = 6);

// Operations.GetQueueStats; a failed call is a test failure (and an empty
// answer).
v1::GetQueueStatsResponse QueueStats(BrokerClients& clients);

// The ids dead-lettered in `queue`, every page.
std::vector<std::string> DeadLetterIds(BrokerClients& clients,
                                       const std::string& queue);

// Every referral in exactly one place, as the operations listings see it
// once no claim is held: the ready and dead-letter listings of each queue
// hold each referral once, exactly those whose state is QUEUED
// (`queued_ids`) or DEAD_LETTERED (`dead_ids`), in the queue the referral
// names (`queue_of`, id -> queue); the queue stats count `decided` decided
// referrals and nothing beyond the `total` the caller knows of. Failures
// are test failures.
void ExpectEachReferralInOnePlace(
    BrokerClients& clients, const std::map<std::string, std::string>& queue_of,
    const std::set<std::string>& queued_ids,
    const std::set<std::string>& dead_ids, int64_t decided, int64_t total);

// Claims everything ready in every queue (leases of 10 minutes, as
// `worker`) and returns the ids claimed, each as often as it was claimed.
std::multiset<std::string> DrainEveryQueue(BrokerClients& clients,
                                           const std::string& worker);

// A referral's deliveries, in order: each claim is the next delivery
// attempt and starts only once the previous one ended; each ends in one
// decision, release or lease expiry, and a lease never runs out before
// `min_lease` has passed; once every lease has run out nothing is held.
// Failures are test failures naming the referral.
void ExpectDeliveriesInOrder(const std::string& id,
                             const v1::GetReferralStatusResponse& referral,
                             absl::Duration min_lease);

// How many events of `stage` a referral's history holds.
int CountStage(const v1::GetReferralStatusResponse& referral, v1::Stage stage);

// What the kernel says a process holds (/proc/<pid>/status and /fd).
struct ProcessResources {
  int64_t rss_bytes = 0;  // VmRSS
  int open_fds = 0;       // entries of /proc/<pid>/fd
  int table_fds = 0;      // of those, RocksDB table files (*.sst)
  // Descriptors of table files that have been deleted: a table reader kept
  // after its file became obsolete, i.e. a leak once the store is quiet.
  int deleted_table_fds = 0;
};
absl::StatusOr<ProcessResources> ReadProcessResources(pid_t pid);

}  // namespace referral::testing

#endif  // REFERRAL_TESTS_SUPPORT_BROKER_WORKLOAD_H_
