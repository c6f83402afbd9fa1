// Live queue events for WatchQueue streams. The store reports each group
// commit's changes (storage::CommittedChange), which ToQueueEvent turns into
// the API's QueueEvent; every open stream on that queue receives them in
// commit order. A stream whose client stops reading keeps a bounded backlog and
// is ended with RESOURCE_EXHAUSTED once it falls too far behind, so a slow or
// hostile watcher can never make the broker's memory grow.
#ifndef REFERRAL_SERVER_QUEUE_WATCHERS_H_
#define REFERRAL_SERVER_QUEUE_WATCHERS_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "referral/v1/broker.pb.h"
#include "storage/store_options.h"

namespace referral::server {

// The API's view of a change the store committed (the one mapping from
// storage's record to referral.v1.QueueEvent).
v1::QueueEvent ToQueueEvent(const storage::CommittedChange& change);

class QueueWatch;

class QueueWatchers {
 public:
  // Events a stream may have waiting before it is ended.
  static constexpr size_t kMaxBacklog = 1024;

  // Open streams one principal may hold at once.
  static constexpr size_t kMaxStreamsPerPrincipal = 32;

  QueueWatchers() = default;
  QueueWatchers(const QueueWatchers&) = delete;
  QueueWatchers& operator=(const QueueWatchers&) = delete;

  // Starts a stream of `queue`'s events for `principal`; the reactor
  // deletes itself when the call is done. Null when the principal already
  // holds kMaxStreamsPerPrincipal streams.
  grpc::ServerWriteReactor<v1::QueueEvent>* Open(std::string queue,
                                                 std::string principal);

  // Delivers committed events to every stream on their queue.
  void Publish(const std::vector<v1::QueueEvent>& events);

  // Number of open streams (for tests and metrics).
  size_t open_streams();

 private:
  friend class QueueWatch;
  void Remove(QueueWatch* watch);

  absl::Mutex mutex_;
  absl::flat_hash_set<QueueWatch*> watches_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, size_t> streams_by_principal_
      ABSL_GUARDED_BY(mutex_);
};

}  // namespace referral::server

#endif  // REFERRAL_SERVER_QUEUE_WATCHERS_H_
