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

namespace referral::server {

struct BrokerOptions {
  // host:port; port 0 picks a free port (see Broker::port()).
  std::string listen_address = "127.0.0.1:50051";
  std::string data_dir = "data";
  // host:port of the Prometheus endpoint (GET /metrics, plain HTTP; counts
  // and labels only, never personal data). Port 0 picks a free port (see
  // Broker::metrics_port()). Empty: no metrics endpoint.
  std::string metrics_listen;
  // host:port of a second, plaintext gRPC port that serves only the
  // standard health service (grpc.health.v1.Health), for probes that cannot
  // present a client certificate (Kubernetes, Docker). Empty: none; the
  // health service is on the main port either way.
  std::string health_listen;
  // Where CreateBackup writes online backups (RocksDB BackupEngine). Empty:
  // backups are refused with FAILED_PRECONDITION.
  std::string backup_dir;
  // Mutual TLS: the broker's certificate and key, and the CA whose client
  // certificates it accepts. Calls are mapped to principals (roles) by the
  // principals file. All four are needed unless insecure_development.
  std::string tls_certificate_file;
  std::string tls_private_key_file;
  std::string tls_client_ca_file;
  std::string principals_file;
  // Plaintext, every call allowed, agency taken from the request: for a
  // developer's machine only. Refused unless listen_address is loopback.
  bool insecure_development = false;
  // 64 hex characters (deploy/make-encryption-key.sh), kept outside the
  // data directory. Empty: the store is not encrypted at rest.
  std::string encryption_key_file;
  // Routing rules and working calendar (protobuf text format). Empty: the
  // shipped defaults under server/config/.
  std::string routing_file;
  std::string calendar_file;
  // Lease given to a claim that asks for none, and the longest allowed.
  absl::Duration default_lease = absl::Minutes(30);
  absl::Duration max_lease = absl::Hours(24);
  // Failed deliveries (releases, lease expiries) before a dead letter.
  int max_deliveries = 5;
  absl::Duration lease_check_interval = absl::Milliseconds(200);
  // Repeated concerns: earlier referrals about a child within the window
  // at which a new referral is marked and raised a priority band.
  absl::Duration repeated_concern_window = absl::Hours(24 * 365);
  int repeated_concern_threshold = 3;
  // Referrer feedback: a decided outcome the referring agency has not
  // acknowledged after this long shows as overdue in the ops stats.
  absl::Duration outcome_ack_overdue = absl::Hours(24);
  // The window of the per-queue time-to-decision figures in the ops stats.
  absl::Duration decision_stats_window = absl::Hours(24 * 28);
  // Calls per second each principal may make on average, and at once. A
  // front door sees tens of referrals a day and a weekend batch of a few
  // hundred, so these only stop a runaway client.
  double rate_limit_per_second = 500;
  double rate_limit_burst = 5000;
  // Largest request accepted (a referral is a few KB).
  int max_message_bytes = 4 * 1024 * 1024;
  // Time granted to in-flight calls on shutdown before they are cancelled.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // On shutdown, health turns NOT_SERVING this long before the broker stops
  // accepting calls, so load balancers and Kubernetes stop sending work.
  absl::Duration shutdown_drain = absl::ZeroDuration();
  // The broker's time source (receipt, leases, due times); tests set it.
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
