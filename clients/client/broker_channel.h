// Opens the gRPC channel every client uses to reach the broker, and turns
// the broker's gRPC statuses into absl::Status for the clients' own code.
//
// ChannelOptions is a plain struct: callers set what they need. With
// ca_file set the channel uses TLS, and with cert_file and key_file mutual
// TLS: the broker identifies the caller by the certificate's URI SAN
// spiffe://referral-broker/<name> (or its CN).
#ifndef REFERRAL_CLIENTS_BROKER_CHANNEL_H_
#define REFERRAL_CLIENTS_BROKER_CHANNEL_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <optional>
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

  // --- Transport security --------------------------------------------------
  // PEM bundle of the CA(s) the broker's certificate must chain to. Empty:
  // plaintext (development only), and then the three fields below must be
  // empty too.
  std::string ca_file;
  // PEM client certificate (chain) and its private key, for mutual TLS.
  // Give both or neither.
  std::string cert_file;
  std::string key_file;
  // The name the broker's certificate must carry, when it differs from the
  // host in `address` (e.g. connecting through a tunnel). Empty: the host
  // in `address`. The development server certificate names localhost and
  // 127.0.0.1.
  std::string tls_server_name;

  // A staff member's name, sent as metadata `x-referral-on-behalf-of` on
  // every call made on the channel, for the broker's audit trail. Printable
  // ASCII, at most 256 bytes. Empty: not sent.
  std::string on_behalf_of;
};

// The metadata key that carries ChannelOptions::on_behalf_of.
inline constexpr char kOnBehalfOfMetadataKey[] = "x-referral-on-behalf-of";

// Environment variables the binaries fall back on when --ca, --cert or --key
// is not given, so that scripts need not repeat them.
inline constexpr char kCaEnv[] = "REFERRAL_CA";
inline constexpr char kCertEnv[] = "REFERRAL_CERT";
inline constexpr char kKeyEnv[] = "REFERRAL_KEY";

// `flag_value` when the flag was given on the command line (even empty, so
// `--ca=` turns an inherited REFERRAL_CA off), else the environment variable
// `env_name`, else "".
std::string FlagOrEnvironment(const std::optional<std::string>& flag_value,
                              const char* env_name);

// A channel to the broker. Creating a channel does not connect: an
// unreachable broker, or one that refuses the TLS handshake (no client
// certificate, an untrusted one, a server name mismatch), shows up as
// UNAVAILABLE on the first call. Fails only for options that cannot be used:
// InvalidArgument for an empty address, a certificate without its key (or
// the reverse), TLS files without ca_file, or an invalid on_behalf_of;
// NotFound / FailedPrecondition for a TLS file that cannot be read or holds
// no PEM of the expected kind (the message names the file, never its
// contents).
absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToBroker(
    const ChannelOptions& options);

// The same code and message as an absl::Status (the numeric codes agree).
absl::Status FromGrpcStatus(const grpc::Status& status);

// The canonical name of a status code, e.g. "NOT_FOUND" ("CODE_99" for a
// number no version of gRPC knows).
std::string StatusCodeName(absl::StatusCode code);
std::string StatusCodeName(grpc::StatusCode code);

// Sets a deadline `timeout` from now on `context`; no-op for an infinite
// timeout (streams that run until cancelled).
void SetTimeout(grpc::ClientContext* context, absl::Duration timeout);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_BROKER_CHANNEL_H_
