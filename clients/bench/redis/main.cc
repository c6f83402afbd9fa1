// referral_bench_redis: the Redis side of deploy/bench.sh, written the way
// a careful producer and consumer would use Redis streams. Intake: XADD of
// the payload file's bytes, --concurrency commands in flight spread over
// --clients connections, each connection pipelining its share (a sliding
// window: a new XADD goes out as each reply comes back). The server is
// expected to run with appendonly yes and appendfsync always, so every
// reply follows the fsync of its command. Drain: --drain_workers consumers
// in one group, XREADGROUP of --drain_batch at a time, then one XACK per
// entry, pipelined (an XACK is a write, so it is fsynced before its reply
// too, like the broker's RecordDecision). End to end (--e2e): one entry at
// a time, from XADD until a consumer blocked in XREADGROUP has it. Prints
// one JSON line per phase (bench_report.h); exit 0 when all succeeded.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench_report.h"
#include "peer_bench.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "Redis host");
ABSL_FLAG(int, port, 6379, "Redis port");
ABSL_FLAG(std::string, stream, "referral-bench", "stream key (reset first)");
ABSL_FLAG(std::string, label, "redis_aof_always", "system name in the JSON");

namespace referral::clients {
namespace {

using Context = std::unique_ptr<redisContext, decltype(&redisFree)>;
using Reply = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;

Context Connect() {
  Context c(redisConnect(absl::GetFlag(FLAGS_host).c_str(),
                         absl::GetFlag(FLAGS_port)),
            &redisFree);
  if (c == nullptr || c->err != 0) {
    std::cerr << "referral_bench_redis: connect: "
              << (c ? c->errstr : "out of memory") << "\n";
    return Context(nullptr, &redisFree);
  }
  return c;
}

Reply GetReply(redisContext* c) {
  void* raw = nullptr;
  if (redisGetReply(c, &raw) != REDIS_OK)
    return Reply(nullptr, &freeReplyObject);
  return Reply(static_cast<redisReply*>(raw), &freeReplyObject);
}

// One command from whole arguments (binary safe, no format string).
Reply Command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  return Reply(
      static_cast<redisReply*>(redisCommandArgv(
          c, static_cast<int>(argv.size()), argv.data(), lengths.data())),
      &freeReplyObject);
}

bool IsError(const Reply& r) {
  return r == nullptr || r->type == REDIS_REPLY_ERROR;
}

// The entry ids in an XREADGROUP reply (nil when there was nothing new).
std::vector<std::string> EntryIds(const redisReply* r) {
  std::vector<std::string> ids;
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return ids;
  for (size_t s = 0; s < r->elements; ++s) {
    const redisReply* stream = r->element[s];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) continue;
    const redisReply* entries = stream->element[1];
    for (size_t e = 0; e < entries->elements; ++e) {
      const redisReply* entry = entries->element[e];
      if (entry->type == REDIS_REPLY_ARRAY && entry->elements >= 1) {
        ids.emplace_back(entry->element[0]->str, entry->element[0]->len);
      }
    }
  }
  return ids;
}

struct Shared {
  std::string payload;
  std::string stream;
  int64_t n = 0;
  int drain_batch = 1;
  std::atomic<int64_t> next{0};
  std::atomic<bool> broken{false};
};

void IntakeClient(Shared* shared, int window, BenchRecorder* recorder) {
  Context c = Connect();
  std::vector<double> latencies;
  int64_t failed = 0;
  if (c == nullptr) {
    shared->broken = true;
    return;
  }
  std::deque<absl::Time> sent;
  while (true) {
    while (static_cast<int>(sent.size()) < window &&
           shared->next.fetch_add(1) < shared->n) {
      redisAppendCommand(c.get(), "XADD %s * p %b", shared->stream.c_str(),
                         shared->payload.data(), shared->payload.size());
      sent.push_back(absl::Now());
    }
    if (sent.empty()) break;
    // Flushes everything appended, then waits for the oldest reply.
    Reply reply = GetReply(c.get());
    if (reply == nullptr) {
      failed += static_cast<int64_t>(sent.size());
      shared->broken = true;
      break;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      ++failed;
    } else {
      latencies.push_back(
          absl::ToDoubleMilliseconds(absl::Now() - sent.front()));
    }
    sent.pop_front();
  }
  recorder->Merge(latencies, failed);
}

void DrainWorker(Shared* shared, int worker, BenchRecorder* reads,
                 BenchRecorder* acks) {
  Context c = Connect();
  if (c == nullptr) {
    shared->broken = true;
    return;
  }
  const std::string consumer = absl::StrCat("bench-", worker);
  const std::string count = absl::StrCat(shared->drain_batch);
  std::vector<double> read_ms, ack_ms;
  int64_t read_failed = 0, ack_failed = 0;
  while (true) {
    const absl::Time t0 = absl::Now();
    Reply r(static_cast<redisReply*>(redisCommand(
                c.get(), "XREADGROUP GROUP g %s COUNT %s STREAMS %s >",
                consumer.c_str(), count.c_str(), shared->stream.c_str())),
            &freeReplyObject);
    if (IsError(r)) {
      ++read_failed;
      shared->broken = true;
      break;
    }
    read_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    const std::vector<std::string> ids = EntryIds(r.get());
    // Intake is over: nothing new means the group has had every entry.
    if (ids.empty()) break;
    std::vector<absl::Time> sent;
    for (const std::string& id : ids) {
      redisAppendCommand(c.get(), "XACK %s g %s", shared->stream.c_str(),
                         id.c_str());
      sent.push_back(absl::Now());
    }
    for (const absl::Time& t : sent) {
      Reply ack = GetReply(c.get());
      if (ack == nullptr || ack->type != REDIS_REPLY_INTEGER ||
          ack->integer != 1) {
        ++ack_failed;
        if (ack == nullptr) {
          shared->broken = true;
          break;
        }
        continue;
      }
      ack_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
    }
    if (shared->broken) break;
  }
  reads->Merge(read_ms, read_failed);
  acks->Merge(ack_ms, ack_failed);
}

// One entry at a time: a consumer is already blocked in XREADGROUP when the
// XADD goes out; the time runs until the XADD is answered and the consumer
// has the entry (Redis answers both only after the fsync).
// Failed probes are counted in the summary.
BenchSummary EndToEnd(const Shared& shared, int64_t probes) {
  const std::string stream = absl::StrCat(shared.stream, "-e2e");
  Context producer = Connect();
  Context consumer = Connect();
  BenchRecorder recorder;
  if (producer == nullptr || consumer == nullptr) {
    recorder.Merge({}, probes);
    return recorder.Summarize(absl::ZeroDuration());
  }
  Command(producer.get(), {"DEL", stream});
  Command(producer.get(), {"XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"});
  std::vector<double> latencies;
  int64_t failed = 0;
  const absl::Time start = absl::Now();
  for (int64_t i = 0; i < probes; ++i) {
    redisAppendCommand(consumer.get(),
                       "XREADGROUP GROUP g e2e COUNT 1 BLOCK 0 STREAMS %s >",
                       stream.c_str());
    int done = 0;
    while (!done) {
      if (redisBufferWrite(consumer.get(), &done) != REDIS_OK) break;
    }
    // Give the server a moment to block the consumer before the XADD.
    absl::SleepFor(absl::Microseconds(200));
    const absl::Time t0 = absl::Now();
    Reply added(static_cast<redisReply*>(redisCommand(
                    producer.get(), "XADD %s * p %b", stream.c_str(),
                    shared.payload.data(), shared.payload.size())),
                &freeReplyObject);
    Reply got = GetReply(consumer.get());
    const std::vector<std::string> ids = EntryIds(got.get());
    if (IsError(added) || ids.size() != 1) {
      ++failed;
      continue;
    }
    latencies.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    Command(consumer.get(), {"XACK", stream, "g", ids[0]});
  }
  const absl::Duration wall = absl::Now() - start;
  Command(producer.get(), {"DEL", stream});
  recorder.Merge(latencies, failed);
  return recorder.Summarize(wall);
}

int Main(int argc, char** argv) {
  const std::optional<std::string> payload =
      StartBench(argc, argv, "referral_bench_redis");
  if (!payload.has_value()) return 2;
  Shared shared;
  shared.payload = *payload;
  shared.stream = absl::GetFlag(FLAGS_stream);
  const PeerBenchPlan plan = PeerBenchPlanFromFlags();
  shared.n = plan.n;
  shared.drain_batch = plan.drain_batch;
  const std::string label = absl::GetFlag(FLAGS_label);

  Context admin = Connect();
  if (admin == nullptr) return 1;
  // A fresh stream and group per run, created before intake so the drain
  // reads everything from the start.
  Command(admin.get(), {"DEL", shared.stream});
  if (IsError(Command(admin.get(), {"XGROUP", "CREATE", shared.stream, "g", "0",
                                    "MKSTREAM"}))) {
    std::cerr << "referral_bench_redis: XGROUP CREATE failed\n";
    return 1;
  }

  bool ok = RunBenchIntake(label, plan.concurrency, plan.clients, shared.n,
                           [&shared](int window, BenchRecorder* recorder) {
                             IntakeClient(&shared, window, recorder);
                           }) &&
            !shared.broken;

  if (plan.drain && shared.n > 0) {
    BenchRecorder reads, acks;
    const int workers = plan.drain_workers;
    const absl::Duration wall = RunOnThreads(
        workers, [&](int w) { DrainWorker(&shared, w, &reads, &acks); });
    // The drain's rate is entries acknowledged per second; its latencies
    // are the XACKs' (the durable step, like RecordDecision).
    ok = ReportBenchPhase(label, "drain", plan.concurrency, workers,
                          acks.Summarize(wall), shared.n) &&
         ok && !shared.broken;
  }

  if (const int64_t probes = plan.e2e; probes > 0) {
    ok = ReportBenchPhase(label, "e2e", 1, 1, EndToEnd(shared, probes)) && ok;
  }
  Command(admin.get(), {"DEL", shared.stream});
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace referral::clients

int main(int argc, char** argv) { return referral::clients::Main(argc, argv); }
