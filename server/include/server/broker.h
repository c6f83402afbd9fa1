// The referral broker: the gRPC services (ReferralIntake, Triage,
// Operations) over the durable referral store, with routing and the
// working-day calendar. main.cc wraps this in a process; tests start it
// in-process on an ephemeral port.
#ifndef REFERRAL_SERVER_BROKER_H_
#define REFERRAL_SERVER_BROKER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/v1/broker_settings.pb.h"

namespace referral::server {

// Every setting at its default (server/proto/server/v1/broker_settings.proto
// declares each one), except that a broker started in-process serves no
// metrics unless asked (metrics_listen ""); the binary serves them on
// loopback.
config::v1::BrokerSettings InProcessBrokerSettings();

struct BrokerOptions {
  // The broker's settings, as the settings file and the flags give them
  // (broker_settings.proto says what each means and its unit). A setting
  // left absent takes its InProcessBrokerSettings() value. Tests set them
  // the same way: options.settings.set_lease_seconds(60).
  config::v1::BrokerSettings settings = InProcessBrokerSettings();
  // Not a setting: the broker's time source (receipt, leases, due times);
  // tests set it.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

class Broker {
 public:
  // Opens the store, loads the rules and starts serving.
  static absl::StatusOr<std::unique_ptr<Broker>> Start(BrokerOptions options);
  // Everything Start checks before it opens the store or binds a port:
  // values in range, rules, calendar, principals, TLS and key files
  // readable and well-formed. The error names the setting (or file, line
  // and column) and the problem. For --check-config.
  static absl::Status CheckOptions(const BrokerOptions& options);
  // Shuts down (if not already) and closes the store.
  virtual ~Broker() = default;

  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // The ports actually bound (0 when that endpoint is off).
  virtual int port() const = 0;
  virtual int metrics_port() const = 0;
  virtual int health_port() const = 0;
  // Re-reads the routing and calendar files; on error keeps the old rules
  // and returns the reason (file, line and problem).
  virtual absl::Status ReloadRules() = 0;
  // Stops accepting calls, lets in-flight ones finish (up to the grace
  // period), then closes the store cleanly. Safe to call more than once.
  virtual void Shutdown() = 0;

 protected:
  Broker() = default;
};

}  // namespace referral::server

#endif  // REFERRAL_SERVER_BROKER_H_
