// The threads that answer a group commit's callers: each mutation's `done`
// (which builds the reply and hands it to gRPC) runs here rather than on the
// commit thread, so the commit thread applies and writes the next group while
// the last one's replies are built and sent.
#ifndef REFERRAL_STORAGE_SRC_COMPLETION_POOL_H_
#define REFERRAL_STORAGE_SRC_COMPLETION_POOL_H_

#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace referral::storage {

class CompletionPool {
 public:
  explicit CompletionPool(int threads);
  // Runs everything already handed over, then joins the threads.
  ~CompletionPool();
  CompletionPool(const CompletionPool&) = delete;
  CompletionPool& operator=(const CompletionPool&) = delete;

  // Runs each task once, on some pool thread, in no particular order.
  void Run(std::vector<absl::AnyInvocable<void() &&>> tasks);

 private:
  void Work();
  bool HasTaskOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !tasks_.empty() || stopping_;
  }

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_SRC_COMPLETION_POOL_H_
