#include "connection_flags.h"

#include <algorithm>
#include <optional>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "broker address");
ABSL_FLAG(std::string, ca, "",
          "PEM CA bundle for the broker's certificate; turns on TLS "
          "($REFERRAL_CA when not given)");
ABSL_FLAG(std::string, cert, "",
          "PEM client certificate for mutual TLS ($REFERRAL_CERT when not "
          "given)");
ABSL_FLAG(std::string, key, "",
          "PEM private key of --cert ($REFERRAL_KEY when not given)");
ABSL_FLAG(std::string, tls_server_name, "",
          "name the broker's certificate must carry, if not the --server "
          "host");

namespace referral::clients {

const std::vector<std::string>& ConnectionFlagNames() {
  static const auto* const kNames = new std::vector<std::string>{
      "server", "ca", "cert", "key", "tls_server_name"};
  return *kNames;
}

ChannelOptions ChannelOptionsFromFlags(const std::vector<std::string>& given,
                                       bool tls) {
  ChannelOptions options;
  options.address = absl::GetFlag(FLAGS_server);
  if (!tls) return options;
  const auto flag = [&given](const char* name, const std::string& value) {
    return std::find(given.begin(), given.end(), name) != given.end()
               ? std::optional<std::string>(value)
               : std::nullopt;
  };
  options.ca_file =
      FlagOrEnvironment(flag("ca", absl::GetFlag(FLAGS_ca)), kCaEnv);
  options.cert_file =
      FlagOrEnvironment(flag("cert", absl::GetFlag(FLAGS_cert)), kCertEnv);
  options.key_file =
      FlagOrEnvironment(flag("key", absl::GetFlag(FLAGS_key)), kKeyEnv);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  return options;
}

}  // namespace referral::clients
