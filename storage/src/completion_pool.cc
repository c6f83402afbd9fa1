#include "completion_pool.h"

#include <utility>

#include "thread_name.h"

namespace referral::storage {

CompletionPool::CompletionPool(int threads) {
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i)
    threads_.emplace_back([this] {
      NameThisThread("store-replies");
      Work();
    });
}

CompletionPool::~CompletionPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& thread : threads_) thread.join();
}

void CompletionPool::Run(std::vector<absl::AnyInvocable<void() &&>> tasks) {
  absl::MutexLock lock(&mu_);
  for (auto& task : tasks) tasks_.push_back(std::move(task));
}

void CompletionPool::Work() {
  for (;;) {
    absl::AnyInvocable<void() &&> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &CompletionPool::HasTaskOrStopping));
      if (tasks_.empty()) return;  // stopping, and nothing is left
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    std::move(task)();
  }
}

}  // namespace referral::storage
