// Small helpers the services share for finishing unary calls: at once with
// a status, or when a store mutation has been committed.
#ifndef REFERRAL_SERVER_SERVICE_REPLIES_H_
#define REFERRAL_SERVER_SERVICE_REPLIES_H_

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpc_status.h"
#include "storage/referral_store.h"

namespace referral::server {

// Finishes the call now with `status`.
inline grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* call,
                                       const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A store callback that fills the response with `fill(value)` on success
// and finishes the call with the store's status either way.
template <typename T, typename Fill>
storage::Done<T> FinishWhenCommitted(grpc::ServerUnaryReactor* reactor,
                                     Fill fill) {
  return [reactor, fill = std::move(fill)](absl::StatusOr<T> result) mutable {
    if (result.ok()) fill(*result);
    reactor->Finish(ToGrpcStatus(result.status()));
  };
}

}  // namespace referral::server

#endif  // REFERRAL_SERVER_SERVICE_REPLIES_H_
