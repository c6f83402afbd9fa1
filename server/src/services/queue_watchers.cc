#include "services/queue_watchers.h"

#include <deque>
#include <iterator>
#include <utility>

#include "base/timestamps.h"

namespace referral::server {

namespace {

// The API's kind of each storage::CommittedChange::Kind, in that order.
constexpr v1::QueueEvent::Kind kEventKinds[] = {
    v1::QueueEvent::KIND_ARRIVED,       v1::QueueEvent::KIND_CLAIMED,
    v1::QueueEvent::KIND_EXTENDED,      v1::QueueEvent::KIND_RELEASED,
    v1::QueueEvent::KIND_LEASE_EXPIRED, v1::QueueEvent::KIND_DECIDED,
    v1::QueueEvent::KIND_DEAD_LETTERED, v1::QueueEvent::KIND_REQUEUED,
};
static_assert(std::size(kEventKinds) ==
              static_cast<size_t>(storage::CommittedChange::Kind::kRequeued) +
                  1);

}  // namespace

v1::QueueEvent ToQueueEvent(const storage::CommittedChange& change) {
  v1::QueueEvent event;
  event.set_kind(kEventKinds[static_cast<size_t>(change.kind)]);
  event.set_queue(change.queue);
  event.set_referral_id(change.referral_id);
  *event.mutable_at() = ToTimestamp(change.at);
  event.set_priority_band(change.band);
  *event.mutable_due_at() = ToTimestamp(change.due_at);
  event.set_worker(change.worker);
  event.set_agency_type(change.agency_type);
  event.set_decision(change.decision);
  event.set_delivery_attempt(change.delivery_attempt);
  event.set_notice_only(change.notice_only);
  return event;
}

// One WatchQueue call. Lock order: QueueWatchers::mutex_ before mutex_.
class QueueWatch : public grpc::ServerWriteReactor<v1::QueueEvent> {
 public:
  QueueWatch(QueueWatchers* hub, std::string queue, std::string principal)
      : hub_(hub), queue_(std::move(queue)), principal_(std::move(principal)) {}

  const std::string& queue() const { return queue_; }
  const std::string& principal() const { return principal_; }

  // Called by the hub with its mutex held.
  void Deliver(const v1::QueueEvent& event) {
    absl::MutexLock lock(&mutex_);
    if (finished_ || fell_behind_) return;
    if (backlog_.size() >= QueueWatchers::kMaxBacklog) {
      // The client is not reading. Stop buffering; the stream ends when the
      // outstanding write completes or the client goes away.
      fell_behind_ = true;
      backlog_.clear();
      return;
    }
    backlog_.push_back(event);
    if (!writing_) WriteNextLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mutex_);
    writing_ = false;
    if (!ok) {
      FinishLocked(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "watch stream closed"));
    } else if (fell_behind_) {
      FinishLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                "watcher fell too far behind; watch again"));
    } else if (!backlog_.empty()) {
      WriteNextLocked();
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&mutex_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    hub_->Remove(this);
    delete this;
  }

 private:
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    in_flight_ = std::move(backlog_.front());
    backlog_.pop_front();
    writing_ = true;
    StartWrite(&in_flight_);
  }

  void FinishLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (finished_) return;
    finished_ = true;
    backlog_.clear();
    Finish(status);
  }

  QueueWatchers* const hub_;
  const std::string queue_;
  const std::string principal_;
  absl::Mutex mutex_;
  std::deque<v1::QueueEvent> backlog_ ABSL_GUARDED_BY(mutex_);
  v1::QueueEvent in_flight_ ABSL_GUARDED_BY(mutex_);
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool fell_behind_ ABSL_GUARDED_BY(mutex_) = false;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
};

grpc::ServerWriteReactor<v1::QueueEvent>* QueueWatchers::Open(
    std::string queue, std::string principal) {
  QueueWatch* watch;
  {
    absl::MutexLock lock(&mutex_);
    size_t& open = streams_by_principal_[principal];
    if (open >= kMaxStreamsPerPrincipal) return nullptr;
    ++open;
    watch = new QueueWatch(this, std::move(queue), std::move(principal));
    watches_.insert(watch);
  }
  // Headers go out once the stream is registered, so a client that waits
  // for them knows it will see every later event.
  watch->StartSendInitialMetadata();
  return watch;
}

void QueueWatchers::Publish(const std::vector<v1::QueueEvent>& events) {
  absl::MutexLock lock(&mutex_);
  if (watches_.empty()) return;
  for (const v1::QueueEvent& event : events) {
    for (QueueWatch* watch : watches_) {
      if (watch->queue() == event.queue()) watch->Deliver(event);
    }
  }
}

size_t QueueWatchers::open_streams() {
  absl::MutexLock lock(&mutex_);
  return watches_.size();
}

void QueueWatchers::Remove(QueueWatch* watch) {
  absl::MutexLock lock(&mutex_);
  watches_.erase(watch);
  auto it = streams_by_principal_.find(watch->principal());
  if (it != streams_by_principal_.end() && --it->second == 0) {
    streams_by_principal_.erase(it);
  }
}

}  // namespace referral::server
