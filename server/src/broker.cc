#include "server/broker.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/json_log.h"
#include "base/status_macros.h"
#include "operations/background_work.h"
#include "operations/broker_metrics.h"
#include "operations/lifecycle_log.h"
#include "rules/front_door_rules.h"
#include "security/call_authorizer.h"
#include "security/principals.h"
#include "services/broker_services.h"
#include "services/queue_watchers.h"
#include "settings/broker_settings.h"
#include "settings/text_config.h"
#include "storage/referral_store.h"

namespace referral::server {
namespace {

// What the health service reports on: the whole broker ("") and each
// service, all with one status (they share one store).
constexpr std::array<const char*, 4> kHealthServiceNames = {
    "", "referral.v1.ReferralIntake", "referral.v1.Triage",
    "referral.v1.Operations"};

class BrokerImpl final : public Broker {
 public:
  explicit BrokerImpl(BrokerOptions options)
      : options_(WithDefaultSettings(std::move(options))) {}

  ~BrokerImpl() override { Shutdown(); }

  absl::Status Init() {
    // Every setting at once, before anything is opened or bound.
    RETURN_IF_ERROR(CheckOptions(options_));
    ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                     ServerCredentials());
    ASSIGN_OR_RETURN(rules_,
                     FrontDoorRulesSource::Load(
                         RulesFileOrDefault(options_.settings.routing_file(),
                                            "routing.txtpb"),
                         RulesFileOrDefault(options_.settings.calendar_file(),
                                            "calendar.txtpb")));

    storage::StoreOptions store_options;
    store_options.path = options_.settings.data_dir();
    store_options.encryption_key_file = options_.settings.encryption_key_file();
    if (options_.settings.encryption_key_file().empty()) {
      LogEvent(LogLevel::kWarning, "store_not_encrypted",
               {{"advice",
                 "referrals are special-category data: give "
                 "--encryption_key_file outside development"}});
    }
    store_options.max_deliveries = options_.settings.max_deliveries();
    store_options.lease_check_interval =
        absl::Milliseconds(options_.settings.lease_check_ms());
    store_options.clock = options_.clock;
    store_options.decision_stats_window =
        absl::Hours(24) * options_.settings.decision_stats_days();
    store_options.on_committed =
        [watchers = &watchers_, metrics = &metrics_](
            const std::vector<storage::CommittedChange>& changes) {
          std::vector<v1::QueueEvent> events;
          events.reserve(changes.size());
          for (const storage::CommittedChange& change : changes) {
            events.push_back(ToQueueEvent(change));
          }
          metrics->CountCommitted(events);
          LogCommittedQueueEvents(events);
          watchers->Publish(events);
        };
    store_options.on_group_committed =
        [metrics = &metrics_](const storage::GroupCommitTiming& timing) {
          metrics->ObserveGroupCommit(timing);
        };
    store_options.on_write_health_changed = [this](const absl::Status& health) {
      OnStoreWriteHealthChanged(health);
    };
    ASSIGN_OR_RETURN(store_, storage::ReferralStore::Open(store_options));
    background_ = std::make_unique<BackgroundWork>();

    context_.store = store_.get();
    context_.rules = rules_.get();
    context_.watchers = &watchers_;
    context_.authorizer = authorizer_.get();
    context_.reload_rules = [this] { return ReloadRules(); };
    context_.intake.repeated_concern_window =
        absl::Hours(24) * options_.settings.repeated_concern_days();
    context_.intake.repeated_concern_threshold =
        options_.settings.repeated_concern_threshold();
    context_.default_lease = absl::Seconds(options_.settings.lease_seconds());
    context_.max_lease = absl::Seconds(options_.settings.max_lease_seconds());
    context_.clock = options_.clock;
    context_.outcome_ack_overdue =
        absl::Hours(options_.settings.outcome_ack_overdue_hours());
    context_.decision_stats_window =
        absl::Hours(24) * options_.settings.decision_stats_days();
    context_.backup_dir = options_.settings.backup_dir();
    context_.encryption_key_file = options_.settings.encryption_key_file();
    context_.background = background_.get();
    intake_ = std::make_unique<IntakeService>(&context_);
    triage_ = std::make_unique<TriageService>(&context_);
    operations_ = std::make_unique<OperationsService>(&context_);

    // Process-wide switches, read when a server is built: the standard
    // health service on every server, and reflection so that standard
    // gRPC tools can discover the API (it describes the contract, no data).
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();

    grpc::ServerBuilder builder;
    builder.AddListeningPort(options_.settings.listen(), credentials, &port_);
    builder.SetMaxReceiveMessageSize(options_.settings.max_message_bytes());
    builder.RegisterService(intake_.get());
    builder.RegisterService(triage_.get());
    builder.RegisterService(operations_.get());
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(metrics_.NewInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options_.settings.listen()));
    }
    // The default health service starts out SERVING; it says NOT_SERVING
    // from here until everything below is up.
    AddHealthService(server_->GetHealthCheckService());
    if (!options_.settings.health_listen().empty()) {
      // Plaintext for probes that cannot present a certificate: it has no
      // referral service on it, only health (and reflection).
      grpc::ServerBuilder health_builder;
      health_builder.AddListeningPort(options_.settings.health_listen(),
                                      grpc::InsecureServerCredentials(),
                                      &health_port_);
      health_server_ = health_builder.BuildAndStart();
      if (health_server_ == nullptr || health_port_ == 0) {
        return absl::UnavailableError(
            absl::StrCat("health_listen: cannot listen on ",
                         options_.settings.health_listen()));
      }
      AddHealthService(health_server_->GetHealthCheckService());
    }
    if (!options_.settings.metrics_listen().empty()) {
      RETURN_IF_ERROR(metrics_.Serve(
          options_.settings.metrics_listen(),
          MetricsSources{.store = store_.get(),
                         .clock = options_.clock,
                         .outcome_ack_overdue = absl::Hours(
                             options_.settings.outcome_ack_overdue_hours()),
                         .serving = [this] { return serving_.load(); }}));
    }
    {
      absl::MutexLock lock(&health_mutex_);
      started_ = true;
    }
    UpdateHealth();
    LogEvent(LogLevel::kInfo, "broker_started",
             {{"listen", options_.settings.listen()},
              {"port", absl::StrCat(port_)},
              {"metrics_port", absl::StrCat(metrics_.port())},
              {"health_port", absl::StrCat(health_port_)}});
    return absl::OkStatus();
  }

  int port() const override { return port_; }
  int metrics_port() const override { return metrics_.port(); }
  int health_port() const override { return health_port_; }

  void AddHealthService(grpc::HealthCheckServiceInterface* health) {
    if (health == nullptr) return;
    {
      absl::MutexLock lock(&health_mutex_);
      health_services_.push_back(health);
    }
    UpdateHealth();
  }

  // Sets every health service name on every server to SERVING when the
  // broker has started, is not draining and its store can write. The store
  // may call this from its thread at any time, hence the lock.
  void UpdateHealth() {
    absl::MutexLock lock(&health_mutex_);
    const bool serving = started_ && !draining_ && store_writable_;
    serving_.store(serving);
    for (grpc::HealthCheckServiceInterface* health : health_services_) {
      for (const char* name : kHealthServiceNames) {
        health->SetServingStatus(name, serving);
      }
    }
  }

  // Called by the store (on its own thread) when commits start failing or
  // succeed again.
  void OnStoreWriteHealthChanged(const absl::Status& health) {
    if (health.ok()) {
      LogEvent(LogLevel::kInfo, "store_writable_again");
    } else {
      LogEvent(LogLevel::kError, "store_not_writable",
               {{"code", absl::StatusCodeToString(health.code())},
                {"reason", std::string(health.message())}});
    }
    {
      absl::MutexLock lock(&health_mutex_);
      store_writable_ = health.ok();
    }
    UpdateHealth();
  }

  RateLimit RateLimits() const {
    return RateLimit{.per_second = options_.settings.rate_limit_per_second(),
                     .burst = options_.settings.rate_limit_burst()};
  }

  // TLS with client certificates, or (explicitly, on loopback only, as
  // CheckOptions made sure) plaintext for development, announced loudly.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials() {
    if (options_.settings.insecure_development()) {
      LogEvent(LogLevel::kWarning, "INSECURE_DEVELOPMENT_MODE",
               {{"advice",
                 "plaintext, no authentication, every caller may do "
                 "everything: never use with real referrals"}});
      authorizer_ = std::make_unique<CallAuthorizer>(nullptr, RateLimits(),
                                                     options_.clock);
      return grpc::InsecureServerCredentials();
    }
    grpc::SslServerCredentialsOptions tls(
        // Verify any certificate presented; a caller without one reaches
        // the authorizer and gets UNAUTHENTICATED.
        GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    ASSIGN_OR_RETURN(tls.pem_root_certs,
                     ReadConfigFile(options_.settings.tls_client_ca_file()));
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    ASSIGN_OR_RETURN(pair.private_key,
                     ReadConfigFile(options_.settings.tls_private_key_file()));
    ASSIGN_OR_RETURN(pair.cert_chain,
                     ReadConfigFile(options_.settings.tls_certificate_file()));
    tls.pem_key_cert_pairs.push_back(std::move(pair));
    ASSIGN_OR_RETURN(
        std::unique_ptr<PrincipalDirectory> directory,
        PrincipalDirectory::LoadFile(options_.settings.principals_file()));
    authorizer_ = std::make_unique<CallAuthorizer>(
        std::move(directory), RateLimits(), options_.clock);
    return grpc::SslServerCredentials(tls);
  }

  absl::Status ReloadRules() override {
    absl::Status status = rules_->Reload();
    if (status.ok()) {
      LogEvent(LogLevel::kInfo, "rules_reloaded");
    } else {
      LogEvent(LogLevel::kError, "rules_reload_refused",
               {{"reason", std::string(status.message())}});
    }
    return status;
  }

  void Shutdown() override {
    absl::MutexLock lock(&shutdown_mutex_);
    if (shut_down_) return;
    shut_down_ = true;
    {
      absl::MutexLock health_lock(&health_mutex_);
      draining_ = true;
    }
    UpdateHealth();
    if (server_ != nullptr) {
      LogEvent(LogLevel::kInfo, "broker_draining",
               {{"drain_seconds",
                 absl::StrCat(options_.settings.shutdown_drain_seconds())}});
      // Still serving, but reporting NOT_SERVING, so load balancers and
      // Kubernetes move work elsewhere before calls start being refused.
      absl::SleepFor(absl::Seconds(options_.settings.shutdown_drain_seconds()));
    }
    {
      // NOT_SERVING for good: later changes are ignored.
      absl::MutexLock health_lock(&health_mutex_);
      for (grpc::HealthCheckServiceInterface* health : health_services_) {
        health->Shutdown();
      }
    }
    const absl::Time deadline =
        absl::Now() + absl::Seconds(options_.settings.shutdown_grace_seconds());
    if (health_server_ != nullptr) {
      health_server_->Shutdown(absl::ToChronoTime(deadline));
      health_server_->Wait();
    }
    if (server_ != nullptr) {
      // Stops accepting at once; in-flight calls (including commits that
      // are being synced) finish, and whatever is still running at the
      // deadline (watch streams) is cancelled.
      server_->Shutdown(absl::ToChronoTime(deadline));
      server_->Wait();
    }
    metrics_.StopServing();
    background_.reset();
    // Drains the commit queue and closes RocksDB cleanly.
    store_.reset();
    LogEvent(LogLevel::kInfo, "broker_stopped");
  }

 private:
  const BrokerOptions options_;
  absl::Mutex health_mutex_;
  bool started_ ABSL_GUARDED_BY(health_mutex_) = false;
  bool draining_ ABSL_GUARDED_BY(health_mutex_) = false;
  bool store_writable_ ABSL_GUARDED_BY(health_mutex_) = true;
  // Owned by server_ and health_server_.
  std::vector<grpc::HealthCheckServiceInterface*> health_services_
      ABSL_GUARDED_BY(health_mutex_);
  std::atomic<bool> serving_{false};  // what health last reported
  // Destroyed in reverse order: the server before the services it calls,
  // the store before the watchers and metrics it publishes to.
  BrokerMetrics metrics_;
  QueueWatchers watchers_;
  std::unique_ptr<FrontDoorRulesSource> rules_;
  std::unique_ptr<CallAuthorizer> authorizer_;
  std::unique_ptr<storage::ReferralStore> store_;
  std::unique_ptr<BackgroundWork> background_;
  ServiceContext context_;
  std::unique_ptr<IntakeService> intake_;
  std::unique_ptr<TriageService> triage_;
  std::unique_ptr<OperationsService> operations_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> health_server_;
  int port_ = 0;
  int health_port_ = 0;
  absl::Mutex shutdown_mutex_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mutex_) = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Broker>> Broker::Start(BrokerOptions options) {
  auto broker = std::make_unique<BrokerImpl>(std::move(options));
  RETURN_IF_ERROR(broker->Init());
  return broker;
}

}  // namespace referral::server
