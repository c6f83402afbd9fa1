// One thread for slow admin work (reading a whole backup back to verify it,
// listing backups on disk), so that it never runs on a gRPC reactor thread
// where it would hold up other calls.
#ifndef REFERRAL_SERVER_BACKGROUND_WORK_H_
#define REFERRAL_SERVER_BACKGROUND_WORK_H_

#include <deque>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace referral::server {

class BackgroundWork {
 public:
  BackgroundWork();
  // Runs every job already accepted, then joins the thread.
  ~BackgroundWork();
  BackgroundWork(const BackgroundWork&) = delete;
  BackgroundWork& operator=(const BackgroundWork&) = delete;

  // Runs `job` on the background thread, after the jobs before it.
  void Run(absl::AnyInvocable<void() &&> job);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace referral::server

#endif  // REFERRAL_SERVER_BACKGROUND_WORK_H_
