// The one place where internal absl::Status errors become gRPC statuses at
// the service edge.
#ifndef REFERRAL_SERVER_GRPC_STATUS_H_
#define REFERRAL_SERVER_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace referral::server {

// Same code, same message (messages never carry personal data).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace referral::server

#endif  // REFERRAL_SERVER_GRPC_STATUS_H_
