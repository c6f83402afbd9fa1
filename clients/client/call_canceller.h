// Lets another thread end a call in progress: a signal thread (the CLI's
// Ctrl-C), or a gateway shutting down its watch streams. A call made with
// CallOptions::canceller binds its context here while it runs; Cancel()
// makes it finish as CANCELLED, and a request made before the call started
// cancels it as soon as it is bound (so a shutdown cannot miss a call that
// was about to start).
//
// A command that waits between calls (stats --watch) Attend()s, so that
// Cancel() reports the request as handled, and waits in WaitForCancel.
// Thread-safe.
#ifndef REFERRAL_CLIENTS_CALL_CANCELLER_H_
#define REFERRAL_CLIENTS_CALL_CANCELLER_H_

#include <grpcpp/client_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace referral::clients {

class CallCanceller {
 public:
  // Cancels at once if Cancel() was already requested.
  void Bind(grpc::ClientContext* context);
  void Unbind() { Bind(nullptr); }
  // Between Attend() and Leave() the caller handles interruption itself
  // even while no call is bound (it checks requested() or waits in
  // WaitForCancel), so Cancel() reports it as handled.
  void Attend() { SetAttended(true); }
  void Leave() { SetAttended(false); }
  // Cancels the bound call and wakes WaitForCancel; false when nothing
  // handles the request (the caller may then simply exit).
  bool Cancel();
  bool requested() const;
  // Waits until Cancel() or `timeout`; true when cancelled.
  bool WaitForCancel(absl::Duration timeout) const;

 private:
  void SetAttended(bool attended);

  mutable absl::Mutex mu_;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool attended_ ABSL_GUARDED_BY(mu_) = false;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_CALL_CANCELLER_H_
