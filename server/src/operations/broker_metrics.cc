#include "operations/broker_metrics.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/stubs/common.h>
#include <grpcpp/grpcpp.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <exception>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "referral/v1/referral.pb.h"
#include "services/referral_views.h"
#include "storage/engine_version.h"

namespace referral::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// The services whose methods get latency and status series. Anything else a
// client names (an unknown method) gets none, so labels stay bounded.
constexpr std::array<absl::string_view, 4> kMeasuredServices = {
    "referral.v1.ReferralIntake", "referral.v1.Triage",
    "referral.v1.Operations", "grpc.health.v1.Health"};

// Unary calls here take from well under a millisecond (a status read) to a
// few hundred (a synced commit on a slow disk).
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return *buckets;
}

// A group commit's stages take from microseconds (applying one small
// mutation) to a second (a synced write on a struggling disk).
const prometheus::Histogram::BucketBoundaries& StageBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
      0.005,    0.01,    0.025,  0.05,    0.1,    0.25,  1};
  return *buckets;
}

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

ClientMetric GaugeSample(std::vector<ClientMetric::Label> labels,
                         double value) {
  ClientMetric sample;
  sample.label = std::move(labels);
  sample.gauge.value = value;
  return sample;
}

MetricFamily GaugeFamily(std::string name, std::string help) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = MetricType::Gauge;
  return family;
}

// Gauges read from the store when Prometheus scrapes: they describe the
// queues as they are now, so there is nothing to keep in step between
// scrapes.
class StoreGauges final : public prometheus::Collectable {
 public:
  explicit StoreGauges(MetricsSources sources) : sources_(std::move(sources)) {}

  std::vector<MetricFamily> Collect() const override {
    const absl::Time now = sources_.clock();
    const storage::StoreCounts counts = sources_.store->GetCounts(
        {.now = now,
         .queues = true,
         .outcomes = true,
         .acknowledge_within = sources_.outcome_ack_overdue,
         .disk = true});
    std::vector<MetricFamily> families;
    AddQueueFamilies(now, counts.queues, families);
    AddFeedbackFamilies(now, counts.outcomes, families);
    AddStoreFamilies(counts.disk, families);
    return families;
  }

 private:
  void AddQueueFamilies(absl::Time now,
                        const std::vector<storage::QueueCounts>& queues,
                        std::vector<MetricFamily>& families) const {
    MetricFamily ready = GaugeFamily("referral_queue_ready_referrals",
                                     "Referrals waiting to be claimed.");
    MetricFamily claimed = GaugeFamily(
        "referral_queue_claimed_referrals",
        "Referrals claimed by triage and not yet decided or released.");
    MetricFamily dead =
        GaugeFamily("referral_queue_dead_letter_referrals",
                    "Referrals moved aside after too many failed deliveries.");
    MetricFamily oldest =
        GaugeFamily("referral_queue_oldest_ready_age_seconds",
                    "Time since the oldest waiting referral was received; "
                    "0 when none waits.");
    MetricFamily past_due = GaugeFamily(
        "referral_queue_oldest_ready_past_due_seconds",
        "How far the oldest waiting referral is past its due time; 0 when "
        "it is not, or none waits.");
    MetricFamily overdue =
        GaugeFamily("referral_queue_overdue_referrals",
                    "Waiting or claimed referrals past their due time.");
    MetricFamily due_soon =
        GaugeFamily("referral_queue_due_within_hour_referrals",
                    "Waiting or claimed referrals due within the next hour.");
    for (const storage::QueueCounts& queue : queues) {
      const std::vector<ClientMetric::Label> labels = {{"queue", queue.queue}};
      ready.metric.push_back(GaugeSample(labels, queue.ready));
      claimed.metric.push_back(GaugeSample(labels, queue.claimed));
      dead.metric.push_back(GaugeSample(labels, queue.dead_letters));
      oldest.metric.push_back(GaugeSample(
          labels, queue.oldest_ready_received_at
                      ? Seconds(now - *queue.oldest_ready_received_at)
                      : 0));
      past_due.metric.push_back(GaugeSample(
          labels, queue.oldest_ready_due_at
                      ? std::max(0.0, Seconds(now - *queue.oldest_ready_due_at))
                      : 0));
      overdue.metric.push_back(GaugeSample(labels, queue.overdue));
      due_soon.metric.push_back(GaugeSample(labels, queue.due_within_hour));
    }
    for (MetricFamily* family :
         {&ready, &claimed, &dead, &oldest, &past_due, &overdue, &due_soon}) {
      families.push_back(std::move(*family));
    }
  }

  void AddFeedbackFamilies(absl::Time now,
                           const std::vector<storage::OutcomeBacklog>& backlog,
                           std::vector<MetricFamily>& families) const {
    MetricFamily unacknowledged =
        GaugeFamily("referral_outcomes_unacknowledged_referrals",
                    "Decided outcomes the referring agency has not "
                    "acknowledged.");
    MetricFamily overdue = GaugeFamily(
        "referral_outcomes_unacknowledged_overdue_referrals",
        absl::StrCat("Of those, decided more than ",
                     absl::FormatDuration(sources_.outcome_ack_overdue),
                     " ago."));
    MetricFamily oldest =
        GaugeFamily("referral_outcomes_oldest_unacknowledged_age_seconds",
                    "Time since the oldest unacknowledged outcome was "
                    "decided.");
    for (const storage::OutcomeBacklog& agency : backlog) {
      const std::vector<ClientMetric::Label> labels = {
          {"agency", agency.agency_id}};
      unacknowledged.metric.push_back(
          GaugeSample(labels, agency.unacknowledged));
      overdue.metric.push_back(GaugeSample(labels, agency.overdue));
      oldest.metric.push_back(
          GaugeSample(labels, Seconds(now - agency.oldest_decided_at)));
    }
    families.push_back(std::move(unacknowledged));
    families.push_back(std::move(overdue));
    families.push_back(std::move(oldest));
  }

  void AddStoreFamilies(const storage::DiskUsage& statistics,
                        std::vector<MetricFamily>& families) const {
    MetricFamily disk =
        GaugeFamily("referral_store_disk_bytes",
                    "Bytes of every file in the data directory.");
    disk.metric.push_back(GaugeSample({}, statistics.disk_bytes));
    MetricFamily pending = GaugeFamily(
        "referral_store_pending_compaction_bytes",
        "RocksDB's estimate of the bytes compaction still has to rewrite.");
    pending.metric.push_back(
        GaugeSample({}, statistics.pending_compaction_bytes));
    MetricFamily writable =
        GaugeFamily("referral_store_writable",
                    "1 while the store commits; 0 after a failed commit "
                    "until it recovers.");
    writable.metric.push_back(
        GaugeSample({}, sources_.store->WriteHealth().ok() ? 1 : 0));
    MetricFamily serving = GaugeFamily(
        "referral_broker_serving",
        "1 while the health service reports SERVING (not starting, not "
        "draining, store writable).");
    serving.metric.push_back(GaugeSample({}, sources_.serving() ? 1 : 0));
    families.push_back(std::move(disk));
    families.push_back(std::move(pending));
    families.push_back(std::move(writable));
    families.push_back(std::move(serving));
  }

  const MetricsSources sources_;
};

// The series of one measured method, created up front.
struct MethodSeries {
  std::string service;
  std::string method;
  prometheus::Histogram* handling = nullptr;
};
using MethodSeriesMap = absl::flat_hash_map<std::string, MethodSeries>;

class RpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(const MethodSeries* series,
                        prometheus::Family<prometheus::Counter>* handled)
      : series_(series), handled_(handled), started_(absl::Now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* batch) override {
    if (batch->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = batch->GetSendStatus();
      series_->handling->Observe(Seconds(absl::Now() - started_));
      handled_
          ->Add({{"grpc_service", series_->service},
                 {"grpc_method", series_->method},
                 {"grpc_code",
                  absl::StatusCodeToString(
                      static_cast<absl::StatusCode>(status.error_code()))}})
          .Increment();
    }
    batch->Proceed();
  }

 private:
  const MethodSeries* const series_;
  prometheus::Family<prometheus::Counter>* const handled_;
  const absl::Time started_;
};

class RpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  RpcMetricsInterceptorFactory(const MethodSeriesMap* methods,
                               prometheus::Family<prometheus::Counter>* handled)
      : methods_(methods), handled_(handled) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // Streams (WatchQueue, health Watch) live for minutes or hours; their
    // duration is not a latency.
    if (info->type() != grpc::experimental::ServerRpcInfo::Type::UNARY) {
      return nullptr;
    }
    auto series = methods_->find(std::string(info->method()));
    if (series == methods_->end()) return nullptr;
    return new RpcMetricsInterceptor(&series->second, handled_);
  }

 private:
  const MethodSeriesMap* const methods_;
  prometheus::Family<prometheus::Counter>* const handled_;
};

}  // namespace

struct BrokerMetrics::Families {
  std::shared_ptr<prometheus::Registry> registry =
      std::make_shared<prometheus::Registry>();

  prometheus::Family<prometheus::Counter>& intake =
      prometheus::BuildCounter()
          .Name("referral_intake_total")
          .Help(
              "Referrals accepted (durably queued), by referring agency type.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& decisions =
      prometheus::BuildCounter()
          .Name("referral_decisions_total")
          .Help("Triage decisions recorded, by decision.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& lease_expiries =
      prometheus::BuildCounter()
          .Name("referral_lease_expiries_total")
          .Help("Claims whose lease ran out before a decision or release.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& redeliveries =
      prometheus::BuildCounter()
          .Name("referral_redeliveries_total")
          .Help("Claims of a referral that had been delivered before.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& dead_letters =
      prometheus::BuildCounter()
          .Name("referral_dead_letters_total")
          .Help("Referrals moved to a queue's dead letters.")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& handling =
      prometheus::BuildHistogram()
          .Name("grpc_server_handling_seconds")
          .Help(
              "Time from the start of a unary call to its status being "
              "sent (for mutations: including the synced commit).")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& handled =
      prometheus::BuildCounter()
          .Name("grpc_server_handled_total")
          .Help("Unary calls completed, by method and status code.")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& group_commit_stages =
      prometheus::BuildHistogram()
          .Name("referral_store_group_commit_seconds")
          .Help(
              "Where each group commit's time went, by stage: waited (its "
              "oldest mutation queued for the commit thread), applied "
              "(checks, reads, index and audit entries), synced (the "
              "synced write).")
          .Register(*registry);
  prometheus::Histogram& group_waited =
      group_commit_stages.Add({{"stage", "waited"}}, StageBuckets());
  prometheus::Histogram& group_applied =
      group_commit_stages.Add({{"stage", "applied"}}, StageBuckets());
  prometheus::Histogram& group_synced =
      group_commit_stages.Add({{"stage", "synced"}}, StageBuckets());
  prometheus::Histogram& group_mutations =
      prometheus::BuildHistogram()
          .Name("referral_store_group_commit_mutations")
          .Help("Mutations sharing each group commit's synced write.")
          .Register(*registry)
          .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32,
                                                           64, 128, 256, 512});
  prometheus::Family<prometheus::Gauge>& build_info =
      prometheus::BuildGauge()
          .Name("referral_broker_build_info")
          .Help("Always 1; the labels say what is running.")
          .Register(*registry);

  // Counters by enum value, created up front so every series exists from
  // the first scrape (rate() needs a starting point).
  absl::flat_hash_map<int, prometheus::Counter*> intake_by_type;
  absl::flat_hash_map<int, prometheus::Counter*> decisions_by_decision;

  // By full method name ("/referral.v1.Triage/ClaimReferrals").
  MethodSeriesMap methods;

  mutable absl::Mutex exposer_mutex;
  std::shared_ptr<StoreGauges> store_gauges ABSL_GUARDED_BY(exposer_mutex);
  std::unique_ptr<prometheus::Exposer> exposer ABSL_GUARDED_BY(exposer_mutex);
};

BrokerMetrics::BrokerMetrics() : families_(std::make_unique<Families>()) {
  Families& f = *families_;
  const google::protobuf::EnumDescriptor* agency_types =
      v1::AgencyType_descriptor();
  for (int i = 0; i < agency_types->value_count(); ++i) {
    const int number = agency_types->value(i)->number();
    if (number == v1::AGENCY_TYPE_UNSPECIFIED) continue;
    f.intake_by_type[number] =
        &f.intake.Add({{"agency_type",
                        AgencyTypeLabel(static_cast<v1::AgencyType>(number))}});
  }
  const google::protobuf::EnumDescriptor* decisions = v1::Decision_descriptor();
  for (int i = 0; i < decisions->value_count(); ++i) {
    const int number = decisions->value(i)->number();
    if (number == v1::DECISION_UNSPECIFIED) continue;
    f.decisions_by_decision[number] = &f.decisions.Add(
        {{"decision", DecisionLabel(static_cast<v1::Decision>(number))}});
  }
  for (absl::string_view service_name : kMeasuredServices) {
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            std::string(service_name));
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string method = service->method(i)->name();
      MethodSeries& entry =
          f.methods[absl::StrCat("/", service->full_name(), "/", method)];
      entry.service = service->full_name();
      entry.method = method;
      entry.handling = &f.handling.Add(
          {{"grpc_service", entry.service}, {"grpc_method", method}},
          LatencyBuckets());
    }
  }
  f.build_info
      .Add({{"version", REFERRAL_BROKER_VERSION},
            {"grpc_version", grpc::Version()},
            {"rocksdb_version", storage::StorageEngineVersion()},
            {"protobuf_version", google::protobuf::internal::VersionString(
                                     GOOGLE_PROTOBUF_VERSION)}})
      .Set(1);
}

BrokerMetrics::~BrokerMetrics() { StopServing(); }

void BrokerMetrics::StopServing() {
  std::unique_ptr<prometheus::Exposer> exposer;
  {
    absl::MutexLock lock(&families_->exposer_mutex);
    exposer = std::move(families_->exposer);
    families_->store_gauges.reset();
  }
  // Joins the HTTP threads, which may be inside a scrape of the store.
  exposer.reset();
}

void BrokerMetrics::ObserveGroupCommit(
    const storage::GroupCommitTiming& timing) {
  Families& f = *families_;
  f.group_waited.Observe(Seconds(timing.waited));
  f.group_applied.Observe(Seconds(timing.applied));
  f.group_synced.Observe(Seconds(timing.synced));
  f.group_mutations.Observe(timing.mutations);
}

void BrokerMetrics::CountCommitted(const std::vector<v1::QueueEvent>& events) {
  Families& f = *families_;
  for (const v1::QueueEvent& event : events) {
    switch (event.kind()) {
      case v1::QueueEvent::KIND_ARRIVED:
        if (event.notice_only()) break;
        if (auto it = f.intake_by_type.find(event.agency_type());
            it != f.intake_by_type.end()) {
          it->second->Increment();
        }
        break;
      case v1::QueueEvent::KIND_DECIDED:
        if (auto it = f.decisions_by_decision.find(event.decision());
            it != f.decisions_by_decision.end()) {
          it->second->Increment();
        }
        break;
      case v1::QueueEvent::KIND_CLAIMED:
        if (event.delivery_attempt() > 1) {
          f.redeliveries.Add({{"queue", event.queue()}}).Increment();
        }
        break;
      case v1::QueueEvent::KIND_LEASE_EXPIRED:
        f.lease_expiries.Add({{"queue", event.queue()}}).Increment();
        break;
      case v1::QueueEvent::KIND_DEAD_LETTERED:
        f.dead_letters.Add({{"queue", event.queue()}}).Increment();
        break;
      default:
        break;
    }
  }
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
BrokerMetrics::NewInterceptorFactory() {
  return std::make_unique<RpcMetricsInterceptorFactory>(&families_->methods,
                                                        &families_->handled);
}

absl::Status BrokerMetrics::Serve(const std::string& listen_address,
                                  MetricsSources sources) {
  Families& f = *families_;
  auto store_gauges = std::make_shared<StoreGauges>(std::move(sources));
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    // prometheus-cpp reports a failure to bind by throwing; nothing else
    // here throws, and the exception stops at this boundary.
    exposer = std::make_unique<prometheus::Exposer>(listen_address, 2);
  } catch (const std::exception& error) {
    return absl::UnavailableError(
        absl::StrCat("metrics_listen: cannot listen on ", listen_address, ": ",
                     error.what()));
  }
  exposer->RegisterCollectable(f.registry);
  exposer->RegisterCollectable(store_gauges);
  absl::MutexLock lock(&f.exposer_mutex);
  f.store_gauges = std::move(store_gauges);
  f.exposer = std::move(exposer);
  return absl::OkStatus();
}

int BrokerMetrics::port() const {
  absl::MutexLock lock(&families_->exposer_mutex);
  if (families_->exposer == nullptr) return 0;
  const std::vector<int> ports = families_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

std::string BrokerMetrics::Render() const {
  std::vector<MetricFamily> families = families_->registry->Collect();
  std::shared_ptr<StoreGauges> store_gauges;
  {
    absl::MutexLock lock(&families_->exposer_mutex);
    store_gauges = families_->store_gauges;
  }
  if (store_gauges != nullptr) {
    for (MetricFamily& family : store_gauges->Collect()) {
      families.push_back(std::move(family));
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace referral::server
