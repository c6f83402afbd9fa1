// Opens the gRPC channel every client uses to reach the broker, and turns
// the broker's gRPC statuses into absl::Status for the clients' own code.
//
// ChannelOptions is a plain struct so that transport security (a CA bundle
// and a client certificate for the agency) can be added as fields without
// changing any caller.
#ifndef REFERRAL_CLIENTS_BROKER_CHANNEL_H_
#define REFERRAL_CLIENTS_BROKER_CHANNEL_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace referral::clients {

struct ChannelOptions {
  // host:port (or any gRPC target, e.g. "unix:/run/broker.sock").
  std::string address = "127.0.0.1:50051";
  // Referrals are a few KB; a page of claims with full referrals and their
  // linked history can be far larger.
  int max_receive_message_bytes = 16 * 1024 * 1024;
  // Open a connection of its own instead of sharing one with every other
  // channel to the same address in this process. The load generator uses
  // this to spread its load over several HTTP/2 connections.
  bool dedicated_connection = false;
  // Prepended to gRPC's user agent so broker logs show which tool called.
  std::string user_agent = "referral-clients";
  // TLS (CA bundle, client certificate and key) will be added here.
};

// A channel to the broker. Creating a channel does not connect: an
// unreachable broker shows up as UNAVAILABLE on the first call. Fails only
// for options that cannot be used (e.g. an empty address).
absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToBroker(
    const ChannelOptions& options);

// The same code and message as an absl::Status (the numeric codes agree).
absl::Status FromGrpcStatus(const grpc::Status& status);

// The canonical name of a gRPC status code, e.g. "NOT_FOUND".
std::string StatusCodeName(grpc::StatusCode code);

// Sets a deadline `timeout` from now on `context`; no-op for an infinite
// timeout (streams that run until cancelled).
void SetTimeout(grpc::ClientContext* context, absl::Duration timeout);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_BROKER_CHANNEL_H_
