// Small helpers the services share for finishing unary calls: at once with
// a status, or when a store mutation has been committed.
#ifndef REFERRAL_SERVER_SERVICE_REPLIES_H_
#define REFERRAL_SERVER_SERVICE_REPLIES_H_

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "security/call_authorizer.h"
#include "services/grpc_status.h"
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

// Who the audit trail records for a caller's mutation.
inline storage::AuditContext AuditOf(const Caller& caller) {
  return {caller.audit_principal, caller.on_behalf_of};
}

// Answers a read of personal data only once the read is recorded in the
// audit trail: no record, no answer (UNAVAILABLE). Failed reads are recorded
// too, with their status code. The response must already be filled.
inline grpc::ServerUnaryReactor* ReplyAudited(grpc::CallbackServerContext* call,
                                              storage::ReferralStore* store,
                                              const Caller& caller,
                                              std::string action,
                                              std::string referral_id,
                                              const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  store->Commit(
      storage::RecordAccessCommand{
          .principal = caller.audit_principal,
          .on_behalf_of = caller.on_behalf_of,
          .action = std::move(action),
          .referral_id = std::move(referral_id),
          .result =
              status.ok() ? "OK" : absl::StatusCodeToString(status.code())},
      [reactor, status](absl::StatusOr<absl::Time> recorded) {
        reactor->Finish(
            ToGrpcStatus(recorded.ok() ? status : recorded.status()));
      });
  return reactor;
}

}  // namespace referral::server

#endif  // REFERRAL_SERVER_SERVICE_REPLIES_H_
