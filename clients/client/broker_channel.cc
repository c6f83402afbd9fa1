#include "broker_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/client_interceptor.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace referral::clients {
namespace {

constexpr size_t kMaxOnBehalfOfBytes = 256;
// PEM files are a few KB; anything far larger is not what the flag meant.
constexpr std::streamsize kMaxPemBytes = 1 << 20;

// Reads a PEM file for `flag`. Errors name the flag and the path, never the
// contents (a key file must not end up in a log).
absl::StatusOr<std::string> ReadPemFile(absl::string_view flag,
                                        const std::string& path,
                                        absl::string_view what,
                                        absl::string_view pem_marker) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    return absl::Status(
        error != 0 ? absl::ErrnoToStatusCode(error)
                   : absl::StatusCode::kFailedPrecondition,
        absl::StrCat("--", flag, ": cannot read ", what, " ", path,
                     error != 0 ? absl::StrCat(": ", std::strerror(error))
                                : std::string()));
  }
  std::string contents;
  contents.resize(kMaxPemBytes + 1);
  in.read(contents.data(), kMaxPemBytes + 1);
  if (in.bad()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--", flag, ": cannot read ", what, " ", path));
  }
  contents.resize(static_cast<size_t>(in.gcount()));
  if (contents.size() > static_cast<size_t>(kMaxPemBytes)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--", flag, ": ", what, " ", path, " is larger than 1 MiB"));
  }
  if (!absl::StrContains(contents, pem_marker)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--", flag, ": ", path, " does not hold a PEM ", what));
  }
  return contents;
}

// Adds x-referral-on-behalf-of to every call's initial metadata, so no
// caller can forget it.
class OnBehalfOfInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit OnBehalfOfInterceptor(std::string value)
      : value_(std::move(value)) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::
                PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace(kOnBehalfOfMetadataKey,
                                                 value_);
    }
    methods->Proceed();
  }

 private:
  const std::string value_;
};

class OnBehalfOfInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit OnBehalfOfInterceptorFactory(std::string value)
      : value_(std::move(value)) {}

  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new OnBehalfOfInterceptor(value_);
  }

 private:
  const std::string value_;
};

absl::Status ValidateOnBehalfOf(absl::string_view name) {
  if (name.size() > kMaxOnBehalfOfBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--on_behalf_of is longer than ", kMaxOnBehalfOfBytes, " bytes"));
  }
  for (const char c : name) {
    // gRPC rejects other bytes in an ASCII metadata value.
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "--on_behalf_of must be printable ASCII");
    }
  }
  if (!name.empty() && (name.front() == ' ' || name.back() == ' ')) {
    return absl::InvalidArgumentError(
        "--on_behalf_of must not start or end with a space");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(
    const ChannelOptions& options) {
  const bool has_cert = !options.cert_file.empty();
  const bool has_key = !options.key_file.empty();
  if (has_cert && !has_key) {
    return absl::InvalidArgumentError(
        "--cert was given without --key (the client certificate's private "
        "key)");
  }
  if (has_key && !has_cert) {
    return absl::InvalidArgumentError(
        "--key was given without --cert (the client certificate)");
  }
  if (options.ca_file.empty()) {
    if (has_cert) {
      return absl::InvalidArgumentError(
          "--cert and --key need --ca (the CA bundle that signed the "
          "broker's certificate)");
    }
    if (!options.tls_server_name.empty()) {
      return absl::InvalidArgumentError(
          "--tls_server_name needs --ca (it applies to TLS only)");
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadPemFile(
      "ca", options.ca_file, "CA bundle", "-----BEGIN CERTIFICATE-----");
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *std::move(ca);
  if (has_cert) {
    absl::StatusOr<std::string> cert =
        ReadPemFile("cert", options.cert_file, "client certificate",
                    "-----BEGIN CERTIFICATE-----");
    if (!cert.ok()) return cert.status();
    // Matches "BEGIN PRIVATE KEY", "BEGIN EC PRIVATE KEY", "BEGIN RSA ...".
    absl::StatusOr<std::string> key =
        ReadPemFile("key", options.key_file, "private key", "PRIVATE KEY-----");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::SslCredentials(ssl);
  if (credentials == nullptr) {
    return absl::InternalError("cannot create TLS credentials");
  }
  return credentials;
}

}  // namespace

std::string FlagOrEnvironment(const std::optional<std::string>& flag_value,
                              const char* env_name) {
  if (flag_value.has_value()) return *flag_value;
  const char* env = std::getenv(env_name);
  return env != nullptr ? env : "";
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToBroker(
    const ChannelOptions& options) {
  if (options.address.empty()) {
    return absl::InvalidArgumentError("the broker address is empty");
  }
  if (absl::Status s = ValidateOnBehalfOf(options.on_behalf_of); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeCredentials(options);
  if (!credentials.ok()) return credentials.status();

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
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  std::vector<
      std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
      interceptors;
  if (!options.on_behalf_of.empty()) {
    interceptors.push_back(
        std::make_unique<OnBehalfOfInterceptorFactory>(options.on_behalf_of));
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::experimental::CreateCustomChannelWithInterceptors(
          options.address, *credentials, args, std::move(interceptors));
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

std::string StatusCodeName(absl::StatusCode code) {
  std::string name = absl::StatusCodeToString(code);
  if (name.empty()) return absl::StrCat("CODE_", static_cast<int>(code));
  return name;
}

std::string StatusCodeName(grpc::StatusCode code) {
  // absl and gRPC share the canonical code numbers and names.
  return StatusCodeName(static_cast<absl::StatusCode>(code));
}

void SetTimeout(grpc::ClientContext* context, absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration() || timeout <= absl::ZeroDuration()) {
    return;
  }
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

}  // namespace referral::clients
