// Test double: an in-process broker serving the public API over real gRPC
// on a loopback port, with just enough state (referrals, leases, outcomes)
// for the client units to be exercised end to end without the real broker,
// plus switches to make calls fail. It also serves gRPC's standard health
// service (grpc.health.v1), SERVING unless a test says otherwise.
// Header-only: clients tests may link the generated API but not the server.
#ifndef REFERRAL_TESTS_CLIENTS_FAKE_BROKER_H_
#define REFERRAL_TESTS_CLIENTS_FAKE_BROKER_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "referral/v1/broker.grpc.pb.h"

namespace referral::testing {

namespace fake_v1 = ::referral::v1;

inline google::protobuf::Timestamp FakeTimestamp(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

class FakeBroker final : public fake_v1::ReferralIntake::Service,
                         public fake_v1::Triage::Service,
                         public fake_v1::Operations::Service {
 public:
  struct Record {
    std::string id;
    std::string agency;
    std::string queue;
    fake_v1::Referral referral;
    fake_v1::ReferralState state = fake_v1::REFERRAL_STATE_QUEUED;
    std::string token;
    int attempts = 0;
    fake_v1::Decision decision = fake_v1::DECISION_UNSPECIFIED;
    std::string feedback;
    absl::Time received;
  };

  FakeBroker() {
    // Process-wide, but harmless: every fake broker serves health.
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(
        static_cast<fake_v1::ReferralIntake::Service*>(this));
    builder.RegisterService(static_cast<fake_v1::Triage::Service*>(this));
    builder.RegisterService(static_cast<fake_v1::Operations::Service*>(this));
    server_ = builder.BuildAndStart();
  }
  ~FakeBroker() override { server_->Shutdown(absl::ToChronoTime(absl::Now())); }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  // Every `n`th submission (1-based) fails with `code`; 0 disables.
  void FailEverySubmit(int n, grpc::StatusCode code) {
    absl::MutexLock lock(&mu_);
    fail_every_submit_ = n;
    fail_code_ = code;
  }
  // Adds a referral that no client submitted (another agency's work).
  std::string AddForeign(const std::string& queue) {
    absl::MutexLock lock(&mu_);
    Record r;
    r.id = NextId();
    r.agency = "someone-else";
    r.queue = queue;
    r.received = absl::Now();
    order_.push_back(r.id);
    records_[r.id] = r;
    return r.id;
  }
  // The number of referrals in each SubmitReferrals call, in call order.
  std::vector<int> batch_sizes() const {
    absl::MutexLock lock(&mu_);
    return batch_sizes_;
  }
  std::vector<fake_v1::SubmitReferralRequest> submits() const {
    absl::MutexLock lock(&mu_);
    return submits_;
  }
  std::vector<fake_v1::RecordDecisionRequest> decisions() const {
    absl::MutexLock lock(&mu_);
    return decisions_;
  }
  std::vector<fake_v1::ReleaseReferralRequest> releases() const {
    absl::MutexLock lock(&mu_);
    return releases_;
  }
  std::vector<fake_v1::ClaimReferralsRequest> claims() const {
    absl::MutexLock lock(&mu_);
    return claims_;
  }
  Record record(const std::string& id) const {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(id);
    return it == records_.end() ? Record() : it->second;
  }

  // --- Switches for the ops and admin calls
  // ----------------------------------- Merged into every GetQueueStats answer
  // (e.g. `at`, feedback rows).
  void SetStatsExtras(const fake_v1::GetQueueStatsResponse& extras) {
    absl::MutexLock lock(&mu_);
    stats_extras_ = extras;
  }
  // The GetQueueStats calls numbered in `calls` (1-based) fail with `code`.
  void FailStatsCalls(std::set<int> calls, grpc::StatusCode code) {
    absl::MutexLock lock(&mu_);
    fail_stats_calls_ = std::move(calls);
    fail_code_ = code;
  }
  // GetQueueStats call number `call` hangs until the client cancels it;
  // stats_call_hanging() is notified when it starts.
  void HangStatsCall(int call) {
    absl::MutexLock lock(&mu_);
    hang_stats_call_ = call;
  }
  absl::Notification& stats_call_hanging() { return stats_call_hanging_; }
  int stats_calls() const {
    absl::MutexLock lock(&mu_);
    return stats_calls_;
  }
  // A backup as if made earlier; CreateBackup numbers on from the highest.
  void AddBackup(uint32_t id, absl::Time created, int64_t size_bytes,
                 int32_t file_count) {
    absl::MutexLock lock(&mu_);
    fake_v1::Backup backup;
    backup.set_backup_id(id);
    *backup.mutable_created_at() = FakeTimestamp(created);
    backup.set_size_bytes(size_bytes);
    backup.set_file_count(file_count);
    backups_.push_back(backup);
  }
  // VerifyBackup of `id` then fails with DATA_LOSS naming `file`.
  void DamageBackup(uint32_t id, const std::string& file) {
    absl::MutexLock lock(&mu_);
    damaged_backups_[id] = file;
  }
  // `service` "" is the server as a whole.
  void SetServing(const std::string& service, bool serving) {
    server_->GetHealthCheckService()->SetServingStatus(service, serving);
  }

  // --- ReferralIntake --------------------------------------------------------
  grpc::Status SubmitReferral(
      grpc::ServerContext*, const fake_v1::SubmitReferralRequest* request,
      fake_v1::SubmitReferralResponse* response) override {
    absl::MutexLock lock(&mu_);
    submits_.push_back(*request);
    ++submit_count_;
    if (fail_every_submit_ > 0 && submit_count_ % fail_every_submit_ == 0) {
      return grpc::Status(fail_code_, "injected failure");
    }
    if (request->referral().children().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "referral.children: at least one child is required");
    }
    const std::string agency = request->referral().referrer().agency_id();
    const std::string key =
        absl::StrCat(agency, "/", request->idempotency_key());
    if (auto it = keys_.find(key); it != keys_.end()) {
      const Record& r = records_[it->second];
      response->set_referral_id(r.id);
      response->set_queue(r.queue);
      response->set_duplicate(true);
      return grpc::Status::OK;
    }
    Record r;
    r.id = NextId();
    r.agency = agency;
    r.queue =
        request->referral().immediate_risk() ? "ifd-urgent" : "ifd-triage";
    r.referral = request->referral();
    r.received = absl::Now();
    keys_[key] = r.id;
    order_.push_back(r.id);
    records_[r.id] = r;
    response->set_referral_id(r.id);
    response->set_queue(r.queue);
    *response->mutable_received_at() = FakeTimestamp(r.received);
    *response->mutable_due_at() = FakeTimestamp(r.received + absl::Hours(24));
    response->set_priority_band(fake_v1::PRIORITY_BAND_STANDARD);
    return grpc::Status::OK;
  }

  // Each submission as SubmitReferral would answer it alone.
  grpc::Status SubmitReferrals(
      grpc::ServerContext* context,
      const fake_v1::SubmitReferralsRequest* request,
      fake_v1::SubmitReferralsResponse* response) override {
    {
      absl::MutexLock lock(&mu_);
      batch_sizes_.push_back(request->referrals_size());
    }
    for (const fake_v1::SubmitReferralRequest& one : request->referrals()) {
      fake_v1::SubmitReferralResult* result = response->add_results();
      grpc::Status status =
          SubmitReferral(context, &one, result->mutable_accepted());
      if (!status.ok()) {
        result->clear_accepted();
        result->set_code(status.error_code());
        result->set_message(status.error_message());
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status GetReferralStatus(
      grpc::ServerContext*, const fake_v1::GetReferralStatusRequest* request,
      fake_v1::GetReferralStatusResponse* response) override {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(request->referral_id());
    if (it == records_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("no referral ", request->referral_id()));
    }
    const Record& r = it->second;
    response->set_referral_id(r.id);
    response->set_state(r.state);
    response->set_queue(r.queue);
    response->set_delivery_attempts(r.attempts);
    response->set_decision(r.decision);
    *response->mutable_received_at() = FakeTimestamp(r.received);
    auto* event = response->add_history();
    event->set_stage(fake_v1::STAGE_RECEIVED);
    *event->mutable_at() = FakeTimestamp(r.received);
    event->set_actor(absl::StrCat("agency:", r.agency));
    event->set_queue(r.queue);
    auto* stage = response->add_stage_durations();
    stage->set_stage("awaiting_claim");
    stage->mutable_duration()->set_seconds(5);
    stage->set_open(true);
    return grpc::Status::OK;
  }

  grpc::Status ListOutcomes(grpc::ServerContext*,
                            const fake_v1::ListOutcomesRequest* request,
                            fake_v1::ListOutcomesResponse* response) override {
    absl::MutexLock lock(&mu_);
    for (const Record* record : InOrder(
             fake_v1::REFERRAL_STATE_DECIDED,
             [&](const Record& r) { return r.agency == request->agency(); })) {
      const Record& r = *record;
      auto* outcome = response->add_outcomes();
      outcome->set_referral_id(r.id);
      outcome->set_decision(r.decision);
      outcome->set_feedback(r.feedback);
      outcome->set_referrer_reference(r.referral.referrer_reference());
    }
    return grpc::Status::OK;
  }

  grpc::Status AcknowledgeOutcome(
      grpc::ServerContext*, const fake_v1::AcknowledgeOutcomeRequest* request,
      fake_v1::AcknowledgeOutcomeResponse* response) override {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(request->referral_id());
    if (it == records_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such referral");
    }
    if (it->second.state == fake_v1::REFERRAL_STATE_OUTCOME_ACKNOWLEDGED) {
      response->set_already_acknowledged(true);
    } else if (it->second.state != fake_v1::REFERRAL_STATE_DECIDED) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "referral is not decided");
    }
    it->second.state = fake_v1::REFERRAL_STATE_OUTCOME_ACKNOWLEDGED;
    *response->mutable_acknowledged_at() = FakeTimestamp(absl::Now());
    return grpc::Status::OK;
  }

  // --- Triage ----------------------------------------------------------------
  grpc::Status ListQueue(grpc::ServerContext*,
                         const fake_v1::ListQueueRequest* request,
                         fake_v1::ListQueueResponse* response) override {
    absl::MutexLock lock(&mu_);
    for (const Record* record :
         InOrder(fake_v1::REFERRAL_STATE_QUEUED, InQueue(request->queue()))) {
      const Record& r = *record;
      auto* entry = response->add_entries();
      entry->set_referral_id(r.id);
      entry->set_priority_band(fake_v1::PRIORITY_BAND_STANDARD);
      entry->set_agency_type(r.referral.referrer().agency_type());
      for (int c : r.referral.concerns())
        entry->add_concerns(static_cast<fake_v1::ConcernCategory>(c));
      for (const auto& child : r.referral.children()) {
        auto* summary = entry->add_children();
        summary->set_initials(absl::StrCat(child.given_name().substr(0, 1),
                                           child.family_name().substr(0, 1)));
        summary->set_age_years(7);
      }
      response->set_ready_count(response->ready_count() + 1);
    }
    return grpc::Status::OK;
  }

  grpc::Status ClaimReferrals(
      grpc::ServerContext*, const fake_v1::ClaimReferralsRequest* request,
      fake_v1::ClaimReferralsResponse* response) override {
    absl::MutexLock lock(&mu_);
    claims_.push_back(*request);
    if (request->worker().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "worker: required");
    }
    for (Record* record :
         InOrder(fake_v1::REFERRAL_STATE_QUEUED, InQueue(request->queue()))) {
      if (response->claims_size() >= request->max()) break;
      Record& r = *record;
      r.state = fake_v1::REFERRAL_STATE_CLAIMED;
      r.token = absl::StrCat("tok-", r.id, "-", ++r.attempts);
      auto* claim = response->add_claims();
      claim->set_referral_id(r.id);
      claim->set_lease_token(r.token);
      claim->set_delivery_attempt(r.attempts);
      *claim->mutable_lease_expires_at() =
          FakeTimestamp(absl::Now() + absl::Minutes(5));
      *claim->mutable_referral() = r.referral;
    }
    return grpc::Status::OK;
  }

  grpc::Status ExtendClaim(grpc::ServerContext*,
                           const fake_v1::ExtendClaimRequest* request,
                           fake_v1::ExtendClaimResponse* response) override {
    absl::MutexLock lock(&mu_);
    Record* r = Leased(request->referral_id(), request->lease_token());
    if (r == nullptr) return StaleLease();
    *response->mutable_lease_expires_at() =
        FakeTimestamp(absl::Now() + absl::Seconds(request->lease_seconds()));
    return grpc::Status::OK;
  }

  grpc::Status ReleaseReferral(
      grpc::ServerContext*, const fake_v1::ReleaseReferralRequest* request,
      fake_v1::ReleaseReferralResponse* response) override {
    absl::MutexLock lock(&mu_);
    releases_.push_back(*request);
    Record* r = Leased(request->referral_id(), request->lease_token());
    if (r == nullptr) return StaleLease();
    if (request->reason().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "reason: required");
    }
    r->state = fake_v1::REFERRAL_STATE_QUEUED;
    r->token.clear();
    // Released referrals go to the back, so foreign ones do not starve a
    // drain in tests.
    order_.erase(std::find(order_.begin(), order_.end(), r->id));
    order_.push_back(r->id);
    response->set_state(r->state);
    return grpc::Status::OK;
  }

  grpc::Status RecordDecision(
      grpc::ServerContext*, const fake_v1::RecordDecisionRequest* request,
      fake_v1::RecordDecisionResponse* response) override {
    absl::MutexLock lock(&mu_);
    decisions_.push_back(*request);
    Record* r = Leased(request->referral_id(), request->lease_token());
    if (r == nullptr) return StaleLease();
    if (request->decision() == fake_v1::DECISION_UNSPECIFIED ||
        request->rationale().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "decision and rationale are required");
    }
    r->state = fake_v1::REFERRAL_STATE_DECIDED;
    r->decision = request->decision();
    r->feedback = request->feedback();
    r->token.clear();
    *response->mutable_decided_at() = FakeTimestamp(absl::Now());
    response->set_state(r->state);
    return grpc::Status::OK;
  }

  grpc::Status WatchQueue(
      grpc::ServerContext* context, const fake_v1::WatchQueueRequest* request,
      grpc::ServerWriter<fake_v1::QueueEvent>* writer) override {
    fake_v1::QueueEvent event;
    event.set_kind(fake_v1::QueueEvent::KIND_ARRIVED);
    event.set_queue(request->queue());
    event.set_referral_id("REF-2026-000001");
    *event.mutable_at() = FakeTimestamp(absl::FromUnixSeconds(1767225600));
    writer->Write(event);
    event.set_kind(fake_v1::QueueEvent::KIND_CLAIMED);
    event.set_worker("alice");
    writer->Write(event);
    if (request->queue() == "endless") {
      // Until the client cancels.
      while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
      return grpc::Status::CANCELLED;
    }
    return grpc::Status::OK;
  }

  // --- Operations ------------------------------------------------------------
  grpc::Status GetQueueStats(
      grpc::ServerContext* context, const fake_v1::GetQueueStatsRequest*,
      fake_v1::GetQueueStatsResponse* response) override {
    int call = 0;
    bool hang = false;
    {
      absl::MutexLock lock(&mu_);
      call = ++stats_calls_;
      hang = call == hang_stats_call_;
      if (fail_stats_calls_.count(call) > 0) {
        return grpc::Status(fail_code_, "injected failure");
      }
    }
    if (hang) {
      stats_call_hanging_.Notify();
      // Until the client cancels.
      while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
      return grpc::Status::CANCELLED;
    }
    absl::MutexLock lock(&mu_);
    std::map<std::string, fake_v1::QueueStats> stats;
    for (const auto& [id, r] : records_) {
      fake_v1::QueueStats& q = stats[r.queue];
      q.set_queue(r.queue);
      if (r.state == fake_v1::REFERRAL_STATE_QUEUED) {
        q.set_ready_count(q.ready_count() + 1);
      }
      if (r.state == fake_v1::REFERRAL_STATE_CLAIMED) {
        q.set_claimed_count(q.claimed_count() + 1);
      }
    }
    for (auto& [name, q] : stats) *response->add_queues() = q;
    response->MergeFrom(stats_extras_);
    return grpc::Status::OK;
  }

  grpc::Status ListDeadLetters(
      grpc::ServerContext*, const fake_v1::ListDeadLettersRequest* request,
      fake_v1::ListDeadLettersResponse* response) override {
    auto* dead = response->add_dead_letters();
    dead->set_referral_id("REF-2026-000099");
    dead->set_queue(request->queue());
    dead->set_delivery_attempts(5);
    response->set_next_page_token("more");
    return grpc::Status::OK;
  }

  grpc::Status RequeueDeadLetter(
      grpc::ServerContext*, const fake_v1::RequeueDeadLetterRequest* request,
      fake_v1::RequeueDeadLetterResponse* response) override {
    if (request->referral_id() != "REF-2026-000099") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "not a dead letter");
    }
    response->set_queue("ifd-triage");
    response->set_state(fake_v1::REFERRAL_STATE_QUEUED);
    return grpc::Status::OK;
  }

  grpc::Status CreateBackup(grpc::ServerContext*,
                            const fake_v1::CreateBackupRequest*,
                            fake_v1::CreateBackupResponse* response) override {
    absl::MutexLock lock(&mu_);
    uint32_t id = 1;
    for (const fake_v1::Backup& b : backups_) {
      id = std::max(id, b.backup_id() + 1);
    }
    fake_v1::Backup backup;
    backup.set_backup_id(id);
    *backup.mutable_created_at() = FakeTimestamp(absl::Now());
    backup.set_size_bytes(4096 + static_cast<int64_t>(records_.size()) * 512);
    backup.set_file_count(5);
    backups_.push_back(backup);
    *response->mutable_backup() = backup;
    return grpc::Status::OK;
  }

  grpc::Status ListBackups(grpc::ServerContext*,
                           const fake_v1::ListBackupsRequest*,
                           fake_v1::ListBackupsResponse* response) override {
    absl::MutexLock lock(&mu_);
    for (const fake_v1::Backup& b : backups_) *response->add_backups() = b;
    return grpc::Status::OK;
  }

  grpc::Status VerifyBackup(grpc::ServerContext*,
                            const fake_v1::VerifyBackupRequest* request,
                            fake_v1::VerifyBackupResponse* response) override {
    absl::MutexLock lock(&mu_);
    for (const fake_v1::Backup& b : backups_) {
      if (b.backup_id() != request->backup_id()) continue;
      if (auto it = damaged_backups_.find(b.backup_id());
          it != damaged_backups_.end()) {
        return grpc::Status(grpc::StatusCode::DATA_LOSS,
                            absl::StrCat("backup ", b.backup_id(), ": ",
                                         it->second, ": checksum mismatch"));
      }
      *response->mutable_backup() = b;
      return grpc::Status::OK;
    }
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no backup ", request->backup_id()));
  }

 private:
  // The records in `state` that `also` accepts, in arrival order.
  std::vector<Record*> InOrder(fake_v1::ReferralState state,
                               const std::function<bool(const Record&)>& also)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<Record*> found;
    for (const std::string& id : order_) {
      Record& r = records_[id];
      if (r.state == state && also(r)) found.push_back(&r);
    }
    return found;
  }
  static std::function<bool(const Record&)> InQueue(const std::string& queue) {
    return [queue](const Record& r) { return r.queue == queue; };
  }
  std::string NextId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return absl::StrFormat("REF-2026-%06d", ++next_id_);
  }
  Record* Leased(const std::string& id, const std::string& token)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = records_.find(id);
    if (it == records_.end() ||
        it->second.state != fake_v1::REFERRAL_STATE_CLAIMED ||
        it->second.token != token) {
      return nullptr;
    }
    return &it->second;
  }
  static grpc::Status StaleLease() {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "lease token is stale or the referral is not claimed");
  }

  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  mutable absl::Mutex mu_;
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, Record> records_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> keys_ ABSL_GUARDED_BY(mu_);
  std::vector<fake_v1::SubmitReferralRequest> submits_ ABSL_GUARDED_BY(mu_);
  std::vector<int> batch_sizes_ ABSL_GUARDED_BY(mu_);
  std::vector<fake_v1::RecordDecisionRequest> decisions_ ABSL_GUARDED_BY(mu_);
  std::vector<fake_v1::ReleaseReferralRequest> releases_ ABSL_GUARDED_BY(mu_);
  std::vector<fake_v1::ClaimReferralsRequest> claims_ ABSL_GUARDED_BY(mu_);
  int submit_count_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_every_submit_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::StatusCode fail_code_ ABSL_GUARDED_BY(mu_) = grpc::StatusCode::OK;
  fake_v1::GetQueueStatsResponse stats_extras_ ABSL_GUARDED_BY(mu_);
  std::set<int> fail_stats_calls_ ABSL_GUARDED_BY(mu_);
  int hang_stats_call_ ABSL_GUARDED_BY(mu_) = 0;
  int stats_calls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Notification stats_call_hanging_;
  std::vector<fake_v1::Backup> backups_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, std::string> damaged_backups_ ABSL_GUARDED_BY(mu_);
};

}  // namespace referral::testing

#endif  // REFERRAL_TESTS_CLIENTS_FAKE_BROKER_H_
