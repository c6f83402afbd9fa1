// The command-line flags with which referral_cli and referral_loadgen reach
// the broker: --server and the TLS flags --ca, --cert, --key (each falling
// back on $REFERRAL_CA, $REFERRAL_CERT and $REFERRAL_KEY when not on the
// command line, so that scripts need not repeat them) and
// --tls_server_name. Declared once here for both tools.
#ifndef REFERRAL_CLIENTS_CONNECTION_FLAGS_H_
#define REFERRAL_CLIENTS_CONNECTION_FLAGS_H_

#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "broker_channel.h"

ABSL_DECLARE_FLAG(std::string, server);
ABSL_DECLARE_FLAG(std::string, ca);
ABSL_DECLARE_FLAG(std::string, cert);
ABSL_DECLARE_FLAG(std::string, key);
ABSL_DECLARE_FLAG(std::string, tls_server_name);

namespace referral::clients {

// The names of the flags above, without dashes.
const std::vector<std::string>& ConnectionFlagNames();

// ChannelOptions from the flags. `given`: the names of the flags on the
// command line (a TLS flag given empty turns its variable off). Without
// `tls`, the TLS flags and variables are ignored (plaintext).
ChannelOptions ChannelOptionsFromFlags(const std::vector<std::string>& given,
                                       bool tls);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_CONNECTION_FLAGS_H_
