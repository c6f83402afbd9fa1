#include "broker_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace referral::clients {

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToBroker(
    const ChannelOptions& options) {
  if (options.address.empty()) {
    return absl::InvalidArgumentError("the broker address is empty");
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  if (!options.user_agent.empty()) {
    args.SetUserAgentPrefix(options.user_agent);
  }
  if (options.dedicated_connection) {
    // Without this, channels with equal arguments share one subchannel
    // (and so one TCP connection) process-wide.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  }
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      options.address, grpc::InsecureChannelCredentials(), args);
  if (channel == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot create a channel to ", options.address));
  }
  return channel;
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

std::string StatusCodeName(grpc::StatusCode code) {
  // absl and gRPC share the canonical code numbers and names.
  std::string name =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  if (name.empty()) return absl::StrCat("CODE_", static_cast<int>(code));
  return name;
}

void SetTimeout(grpc::ClientContext* context, absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration() || timeout <= absl::ZeroDuration()) {
    return;
  }
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

}  // namespace referral::clients
