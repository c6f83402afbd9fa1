#include "server/broker.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "broker_services.h"
#include "call_authorizer.h"
#include "event_log.h"
#include "front_door_rules.h"
#include "principals.h"
#include "queue_watchers.h"
#include "storage/referral_store.h"
#include "storage/status_macros.h"
#include "text_config.h"

namespace referral::server {
namespace {

// "127.0.0.1:50051", "localhost:0", "[::1]:50051".
bool IsLoopbackAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  const std::string host =
      colon == std::string::npos ? address : address.substr(0, colon);
  return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

std::string DefaultConfigFile(const std::string& given,
                              const std::string& name) {
  return given.empty() ? absl::StrCat(REFERRAL_CONFIG_DIR, "/", name) : given;
}

class BrokerImpl final : public Broker {
 public:
  explicit BrokerImpl(BrokerOptions options) : options_(std::move(options)) {}

  ~BrokerImpl() override { Shutdown(); }

  absl::Status Init() {
    ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                     ServerCredentials());
    if (options_.outcome_ack_overdue < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          "outcome_ack_overdue: must not be negative");
    }
    ASSIGN_OR_RETURN(
        rules_,
        FrontDoorRulesSource::Load(
            DefaultConfigFile(options_.routing_file, "routing.txtpb"),
            DefaultConfigFile(options_.calendar_file, "calendar.txtpb")));

    storage::StoreOptions store_options;
    store_options.path = options_.data_dir;
    store_options.encryption_key_file = options_.encryption_key_file;
    if (options_.encryption_key_file.empty()) {
      LogEvent(LogLevel::kWarning, "store_not_encrypted",
               {{"advice",
                 "referrals are special-category data: give "
                 "--encryption_key_file outside development"}});
    }
    store_options.max_deliveries = options_.max_deliveries;
    store_options.lease_check_interval = options_.lease_check_interval;
    store_options.clock = options_.clock;
    store_options.decision_stats_window = options_.decision_stats_window;
    store_options.on_committed =
        [watchers = &watchers_](const std::vector<v1::QueueEvent>& events) {
          watchers->Publish(events);
        };
    ASSIGN_OR_RETURN(store_, storage::ReferralStore::Open(store_options));

    context_.store = store_.get();
    context_.rules = rules_.get();
    context_.watchers = &watchers_;
    context_.authorizer = authorizer_.get();
    context_.reload_rules = [this] { return ReloadRules(); };
    context_.intake.repeated_concern_window = options_.repeated_concern_window;
    context_.intake.repeated_concern_threshold =
        options_.repeated_concern_threshold;
    context_.default_lease = options_.default_lease;
    context_.max_lease = options_.max_lease;
    context_.clock = options_.clock;
    context_.outcome_ack_overdue = options_.outcome_ack_overdue;
    context_.decision_stats_window = options_.decision_stats_window;
    intake_ = std::make_unique<IntakeService>(&context_);
    triage_ = std::make_unique<TriageService>(&context_);
    operations_ = std::make_unique<OperationsService>(&context_);

    grpc::ServerBuilder builder;
    builder.AddListeningPort(options_.listen_address, credentials, &port_);
    builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
    builder.RegisterService(intake_.get());
    builder.RegisterService(triage_.get());
    builder.RegisterService(operations_.get());
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options_.listen_address));
    }
    LogEvent(
        LogLevel::kInfo, "broker_started",
        {{"listen", options_.listen_address}, {"port", absl::StrCat(port_)}});
    return absl::OkStatus();
  }

  int port() const override { return port_; }

  RateLimit RateLimits() const {
    return RateLimit{.per_second = options_.rate_limit_per_second,
                     .burst = options_.rate_limit_burst};
  }

  // TLS with client certificates, or (explicitly, on loopback only)
  // plaintext for development, announced loudly.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials() {
    const bool any_tls = !options_.tls_certificate_file.empty() ||
                         !options_.tls_private_key_file.empty() ||
                         !options_.tls_client_ca_file.empty();
    if (!any_tls) {
      if (!options_.insecure_development) {
        return absl::FailedPreconditionError(
            "refusing to serve without TLS: give --tls_certificate_file, "
            "--tls_private_key_file, --tls_client_ca_file and "
            "--principals_file, or --insecure_development on a loopback "
            "address");
      }
      if (!IsLoopbackAddress(options_.listen_address)) {
        return absl::FailedPreconditionError(
            "--insecure_development is only allowed on a loopback address");
      }
      LogEvent(LogLevel::kWarning, "INSECURE_DEVELOPMENT_MODE",
               {{"advice",
                 "plaintext, no authentication, every caller may do "
                 "everything: never use with real referrals"}});
      authorizer_ = std::make_unique<CallAuthorizer>(nullptr, RateLimits(),
                                                     options_.clock);
      return grpc::InsecureServerCredentials();
    }
    if (options_.insecure_development) {
      return absl::InvalidArgumentError(
          "--insecure_development cannot be combined with TLS");
    }
    grpc::SslServerCredentialsOptions tls(
        // Verify any certificate presented; a caller without one reaches
        // the authorizer and gets UNAUTHENTICATED.
        GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    ASSIGN_OR_RETURN(tls.pem_root_certs,
                     ReadConfigFile(options_.tls_client_ca_file));
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    ASSIGN_OR_RETURN(pair.private_key,
                     ReadConfigFile(options_.tls_private_key_file));
    ASSIGN_OR_RETURN(pair.cert_chain,
                     ReadConfigFile(options_.tls_certificate_file));
    tls.pem_key_cert_pairs.push_back(std::move(pair));
    if (options_.principals_file.empty()) {
      return absl::InvalidArgumentError(
          "--principals_file is required with TLS");
    }
    ASSIGN_OR_RETURN(std::unique_ptr<PrincipalDirectory> directory,
                     PrincipalDirectory::LoadFile(options_.principals_file));
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
    if (server_ != nullptr) {
      // Stops accepting at once; in-flight calls (including commits that
      // are being synced) finish, and whatever is still running at the
      // deadline (watch streams) is cancelled.
      server_->Shutdown(
          absl::ToChronoTime(absl::Now() + options_.shutdown_grace));
      server_->Wait();
    }
    // Drains the commit queue and closes RocksDB cleanly.
    store_.reset();
    LogEvent(LogLevel::kInfo, "broker_stopped");
  }

 private:
  const BrokerOptions options_;
  // Destroyed in reverse order: the server before the services it calls,
  // the store before the watchers it publishes to.
  QueueWatchers watchers_;
  std::unique_ptr<FrontDoorRulesSource> rules_;
  std::unique_ptr<CallAuthorizer> authorizer_;
  std::unique_ptr<storage::ReferralStore> store_;
  ServiceContext context_;
  std::unique_ptr<IntakeService> intake_;
  std::unique_ptr<TriageService> triage_;
  std::unique_ptr<OperationsService> operations_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
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
