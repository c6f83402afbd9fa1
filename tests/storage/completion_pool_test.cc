#include "completion_pool.h"

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace referral::storage {
namespace {

std::vector<absl::AnyInvocable<void() &&>> Counting(int n,
                                                    std::atomic<int>* runs) {
  std::vector<absl::AnyInvocable<void() &&>> tasks;
  for (int i = 0; i < n; ++i) tasks.push_back([runs] { runs->fetch_add(1); });
  return tasks;
}

TEST(CompletionPoolTest, RunsEveryTaskOnceOffTheCallersThread) {
  std::atomic<int> runs{0};
  absl::BlockingCounter done(100);
  absl::Mutex mu;
  std::set<std::thread::id> threads;
  std::vector<absl::AnyInvocable<void() &&>> tasks;
  for (int i = 0; i < 100; ++i) {
    tasks.push_back([&] {
      runs.fetch_add(1);
      {
        absl::MutexLock lock(&mu);
        threads.insert(std::this_thread::get_id());
      }
      done.DecrementCount();
    });
  }
  CompletionPool pool(2);
  pool.Run(std::move(tasks));
  done.Wait();
  EXPECT_EQ(runs.load(), 100);
  absl::MutexLock lock(&mu);
  EXPECT_FALSE(threads.contains(std::this_thread::get_id()));
  EXPECT_LE(threads.size(), 2u);
}

TEST(CompletionPoolTest, ClosingRunsEverythingAlreadyHandedOver) {
  std::atomic<int> runs{0};
  absl::Notification release;
  {
    CompletionPool pool(1);
    // The one thread is held, so the rest are still queued at close.
    std::vector<absl::AnyInvocable<void() &&>> first;
    first.push_back([&release] { release.WaitForNotification(); });
    pool.Run(std::move(first));
    pool.Run(Counting(50, &runs));
    release.Notify();
  }
  EXPECT_EQ(runs.load(), 50);
}

TEST(CompletionPoolTest, ATaskMayHandOverMoreWork) {
  std::atomic<int> runs{0};
  absl::Notification second_ran;
  CompletionPool pool(2);
  std::vector<absl::AnyInvocable<void() &&>> tasks;
  tasks.push_back([&] {
    runs.fetch_add(1);
    std::vector<absl::AnyInvocable<void() &&>> more;
    more.push_back([&] {
      runs.fetch_add(1);
      second_ran.Notify();
    });
    pool.Run(std::move(more));
  });
  pool.Run(std::move(tasks));
  second_ran.WaitForNotification();
  EXPECT_EQ(runs.load(), 2);
}

}  // namespace
}  // namespace referral::storage
