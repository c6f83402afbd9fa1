#include "call_canceller.h"

namespace referral::clients {

void CallCanceller::Bind(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  context_ = context;
  if (requested_ && context_ != nullptr) context_->TryCancel();
}

void CallCanceller::SetAttended(bool attended) {
  absl::MutexLock lock(&mu_);
  attended_ = attended;
}

bool CallCanceller::Cancel() {
  absl::MutexLock lock(&mu_);
  requested_ = true;
  if (context_ != nullptr) context_->TryCancel();
  return context_ != nullptr || attended_;
}

bool CallCanceller::requested() const {
  absl::MutexLock lock(&mu_);
  return requested_;
}

bool CallCanceller::WaitForCancel(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&requested_), timeout);
}

}  // namespace referral::clients
