// referral_bench_rabbitmq: the RabbitMQ side of deploy/bench.sh, through
// rabbitmq-c (librabbitmq), written as a careful real producer and
// consumer would. Intake: persistent messages (delivery mode 2) carrying
// the payload file's bytes to a durable queue (--queue_type=quorum or
// classic) in publisher-confirm mode; --concurrency unconfirmed messages
// in flight spread over --clients connections, each connection keeping its
// own window (a new publish as each confirm arrives; multiple-acks
// honoured). A message counts when its confirm arrives, which RabbitMQ
// sends only once the message is on disk (quorum: in the fsynced Raft log;
// classic: persisted by the message store). Drain: --drain_workers
// consumers with manual acks and a prefetch of --drain_batch, one ack per
// message. End to end (--e2e): one message at a time, from publish until
// it is confirmed and a waiting consumer has it. Prints one JSON line per
// phase (bench_report.h); exit 0 when all succeeded.
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench_report.h"
#include "peer_bench.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "RabbitMQ host");
ABSL_FLAG(int, port, 5672, "AMQP port");
ABSL_FLAG(std::string, user, "guest", "user (guest may log in on loopback)");
ABSL_FLAG(std::string, password, "guest", "password");
ABSL_FLAG(std::string, queue, "referral-bench", "queue (deleted at the end)");
ABSL_FLAG(std::string, queue_type, "quorum", "quorum or classic");
ABSL_FLAG(std::string, label, "",
          "system name in the JSON (default: "
          "rabbitmq_<queue_type>)");

namespace referral::clients {
namespace {

constexpr amqp_channel_t kChannel = 1;

absl::Status ReplyStatus(amqp_connection_state_t conn, absl::string_view what) {
  const amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn);
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return absl::OkStatus();
  if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
    return absl::UnavailableError(
        absl::StrCat(what, ": ", amqp_error_string2(reply.library_error)));
  }
  if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
      reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    const auto* close = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": channel closed: ",
        absl::string_view(static_cast<const char*>(close->reply_text.bytes),
                          close->reply_text.len)));
  }
  return absl::InternalError(absl::StrCat(what, ": server error"));
}

// One connection with channel 1 open.
class Connection {
 public:
  Connection() : conn_(amqp_new_connection()) {}
  ~Connection() {
    if (open_) {
      amqp_channel_close(conn_, kChannel, AMQP_REPLY_SUCCESS);
      amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  absl::Status Open() {
    amqp_socket_t* socket = amqp_tcp_socket_new(conn_);
    if (socket == nullptr) return absl::InternalError("amqp_tcp_socket_new");
    if (amqp_socket_open(socket, absl::GetFlag(FLAGS_host).c_str(),
                         absl::GetFlag(FLAGS_port)) != AMQP_STATUS_OK) {
      return absl::UnavailableError("cannot connect to RabbitMQ");
    }
    const amqp_rpc_reply_t login =
        amqp_login(conn_, "/", 0, 131072, /*heartbeat=*/0,
                   AMQP_SASL_METHOD_PLAIN, absl::GetFlag(FLAGS_user).c_str(),
                   absl::GetFlag(FLAGS_password).c_str());
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
      return absl::UnauthenticatedError("RabbitMQ login failed");
    }
    amqp_channel_open(conn_, kChannel);
    if (absl::Status s = ReplyStatus(conn_, "channel.open"); !s.ok()) return s;
    open_ = true;
    return absl::OkStatus();
  }

  amqp_connection_state_t get() { return conn_; }

 private:
  amqp_connection_state_t conn_;
  bool open_ = false;
};

amqp_bytes_t Bytes(const std::string& s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

absl::Status DeclareQueue(Connection& c, const std::string& queue,
                          const std::string& type) {
  amqp_table_entry_t entry;
  entry.key = amqp_cstring_bytes("x-queue-type");
  entry.value.kind = AMQP_FIELD_KIND_UTF8;
  entry.value.value.bytes = Bytes(type);
  const amqp_table_t arguments{1, &entry};
  amqp_queue_declare(c.get(), kChannel, Bytes(queue), /*passive=*/0,
                     /*durable=*/1, /*exclusive=*/0, /*auto_delete=*/0,
                     arguments);
  return ReplyStatus(c.get(), "queue.declare");
}

struct Shared {
  std::string payload;
  std::string queue;
  int64_t n = 0;
  int drain_batch = 1;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> consumed{0};
  std::atomic<int64_t> redelivered{0};
  std::atomic<bool> broken{false};
};

amqp_basic_properties_t PersistentProperties() {
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  props.content_type = amqp_cstring_bytes("application/x-protobuf");
  return props;
}

// Opens `c` for a worker; on failure says why and marks the run broken.
bool OpenForWorker(Connection& c, Shared* shared) {
  const absl::Status opened = c.Open();
  if (opened.ok()) return true;
  std::cerr << "referral_bench_rabbitmq: " << opened << "\n";
  shared->broken = true;
  return false;
}

void Publisher(Shared* shared, int window, BenchRecorder* recorder) {
  Connection c;
  if (!OpenForWorker(c, shared)) return;
  std::vector<double> latencies;
  int64_t failed = 0;
  amqp_confirm_select(c.get(), kChannel);
  if (absl::Status s = ReplyStatus(c.get(), "confirm.select"); !s.ok()) {
    std::cerr << "referral_bench_rabbitmq: " << s << "\n";
    shared->broken = true;
    return;
  }
  const amqp_basic_properties_t props = PersistentProperties();
  const amqp_bytes_t body = Bytes(shared->payload);
  const amqp_bytes_t routing_key = Bytes(shared->queue);
  // Delivery tags count from 1 on the channel; sent[i] is tag first_tag+i.
  std::deque<absl::Time> sent;
  uint64_t first_tag = 1;
  while (true) {
    while (static_cast<int>(sent.size()) < window &&
           shared->next.fetch_add(1) < shared->n) {
      sent.push_back(absl::Now());
      if (amqp_basic_publish(c.get(), kChannel, amqp_empty_bytes, routing_key,
                             0, 0, &props, body) != AMQP_STATUS_OK) {
        shared->broken = true;
        failed += static_cast<int64_t>(sent.size());
        sent.clear();
        break;
      }
    }
    if (sent.empty()) break;
    amqp_frame_t frame;
    if (amqp_simple_wait_frame(c.get(), &frame) != AMQP_STATUS_OK) {
      shared->broken = true;
      failed += static_cast<int64_t>(sent.size());
      break;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    uint64_t tag = 0;
    bool multiple = false;
    bool ok = true;
    if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
      const auto* ack =
          static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
      tag = ack->delivery_tag;
      multiple = ack->multiple != 0;
    } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
      const auto* nack =
          static_cast<amqp_basic_nack_t*>(frame.payload.method.decoded);
      tag = nack->delivery_tag;
      multiple = nack->multiple != 0;
      ok = false;
    } else {
      std::cerr << "referral_bench_rabbitmq: unexpected method "
                << frame.payload.method.id << " while publishing\n";
      shared->broken = true;
      failed += static_cast<int64_t>(sent.size());
      break;
    }
    const uint64_t from = multiple ? first_tag : tag;
    const absl::Time now = absl::Now();
    // Confirms may come out of order across queues; on one queue they come
    // in order, so tags below the acknowledged one are settled too when
    // `multiple` is set, and a single ack settles the front.
    for (uint64_t t = from; t <= tag && !sent.empty(); ++t) {
      if (ok) {
        latencies.push_back(absl::ToDoubleMilliseconds(now - sent.front()));
      } else {
        ++failed;
      }
      sent.pop_front();
      ++first_tag;
    }
  }
  recorder->Merge(latencies, failed);
}

void Consumer(Shared* shared, int worker, BenchRecorder* recorder) {
  Connection c;
  if (!OpenForWorker(c, shared)) return;
  std::vector<double> latencies;
  int64_t failed = 0;
  amqp_basic_qos(c.get(), kChannel, 0,
                 static_cast<uint16_t>(shared->drain_batch), 0);
  amqp_basic_consume(c.get(), kChannel, Bytes(shared->queue),
                     amqp_cstring_bytes(absl::StrCat("bench-", worker).c_str()),
                     0, /*no_ack=*/0, 0, amqp_empty_table);
  if (absl::Status s = ReplyStatus(c.get(), "basic.consume"); !s.ok()) {
    std::cerr << "referral_bench_rabbitmq: " << s << "\n";
    shared->broken = true;
    return;
  }
  while (shared->consumed.load() < shared->n && !shared->broken) {
    timeval timeout{0, 200000};
    amqp_envelope_t envelope;
    amqp_maybe_release_buffers(c.get());
    const absl::Time t0 = absl::Now();
    const amqp_rpc_reply_t reply =
        amqp_consume_message(c.get(), &envelope, &timeout, 0);
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_TIMEOUT) {
      continue;  // look again whether the others finished the queue
    }
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
      ++failed;
      shared->broken = true;
      break;
    }
    const bool intact = envelope.message.body.len == shared->payload.size();
    if (envelope.redelivered) shared->redelivered.fetch_add(1);

    // Processing done: acknowledge this one message, as a consumer that
    // finishes each message before the next would.
    if (amqp_basic_ack(c.get(), kChannel, envelope.delivery_tag, 0) !=
            AMQP_STATUS_OK ||
        !intact) {
      ++failed;
    } else if (!envelope.redelivered) {
      latencies.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    }
    // Only first deliveries count towards the n messages: a quorum queue
    // occasionally delivers a message again (counted apart, on stderr).
    if (!envelope.redelivered) shared->consumed.fetch_add(1);
    amqp_destroy_envelope(&envelope);
  }
  recorder->Merge(latencies, failed);
}

// Failed probes are counted in the summary.
BenchSummary EndToEnd(const Shared& shared, const std::string& type,
                      int64_t probes) {
  BenchRecorder recorder;
  const std::string queue = absl::StrCat(shared.queue, "-e2e");
  Connection producer, consumer;
  if (!producer.Open().ok() || !consumer.Open().ok() ||
      !DeclareQueue(producer, queue, type).ok()) {
    recorder.Merge({}, probes);
    return recorder.Summarize(absl::ZeroDuration());
  }
  amqp_confirm_select(producer.get(), kChannel);
  amqp_basic_qos(consumer.get(), kChannel, 0, 1, 0);
  amqp_basic_consume(consumer.get(), kChannel, Bytes(queue), amqp_empty_bytes,
                     0, 0, 0, amqp_empty_table);
  if (!ReplyStatus(consumer.get(), "basic.consume").ok()) {
    recorder.Merge({}, probes);
    return recorder.Summarize(absl::ZeroDuration());
  }
  const amqp_basic_properties_t props = PersistentProperties();
  std::vector<double> latencies;
  int64_t failed = 0;
  const absl::Time start = absl::Now();
  for (int64_t i = 0; i < probes; ++i) {
    const absl::Time t0 = absl::Now();
    amqp_basic_publish(producer.get(), kChannel, amqp_empty_bytes, Bytes(queue),
                       0, 0, &props, Bytes(shared.payload));
    amqp_frame_t frame;
    const bool confirmed =
        amqp_simple_wait_frame(producer.get(), &frame) == AMQP_STATUS_OK &&
        frame.frame_type == AMQP_FRAME_METHOD &&
        frame.payload.method.id == AMQP_BASIC_ACK_METHOD;
    amqp_envelope_t envelope;
    amqp_maybe_release_buffers(consumer.get());
    timeval timeout{10, 0};
    const amqp_rpc_reply_t got =
        amqp_consume_message(consumer.get(), &envelope, &timeout, 0);
    if (!confirmed || got.reply_type != AMQP_RESPONSE_NORMAL) {
      ++failed;
      break;
    }
    latencies.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    amqp_basic_ack(consumer.get(), kChannel, envelope.delivery_tag, 0);
    amqp_destroy_envelope(&envelope);
  }
  const absl::Duration wall = absl::Now() - start;
  amqp_queue_delete(producer.get(), kChannel, Bytes(queue), 0, 0);
  recorder.Merge(latencies, failed);
  return recorder.Summarize(wall);
}

int Main(int argc, char** argv) {
  const std::optional<std::string> payload =
      StartBench(argc, argv, "referral_bench_rabbitmq");
  if (!payload.has_value()) return 2;
  const std::string type = absl::GetFlag(FLAGS_queue_type);
  if (type != "quorum" && type != "classic") {
    std::cerr << "referral_bench_rabbitmq: --queue_type must be quorum or "
                 "classic\n";
    return 2;
  }
  std::string label = absl::GetFlag(FLAGS_label);
  if (label.empty()) label = absl::StrCat("rabbitmq_", type);
  Shared shared;
  shared.payload = *payload;
  shared.queue = absl::GetFlag(FLAGS_queue);
  const PeerBenchPlan plan = PeerBenchPlanFromFlags();
  shared.n = plan.n;
  shared.drain_batch = plan.drain_batch;

  Connection admin;
  if (absl::Status s = admin.Open(); !s.ok()) {
    std::cerr << "referral_bench_rabbitmq: " << s << "\n";
    return 1;
  }
  if (absl::Status s = DeclareQueue(admin, shared.queue, type); !s.ok()) {
    std::cerr << "referral_bench_rabbitmq: " << s << "\n";
    return 1;
  }

  bool ok = RunBenchIntake(label, plan.concurrency, plan.clients, shared.n,
                           [&shared](int window, BenchRecorder* recorder) {
                             Publisher(&shared, window, recorder);
                           }) &&
            !shared.broken;

  if (plan.drain && shared.n > 0 && ok) {
    BenchRecorder drain;
    const int workers = plan.drain_workers;
    const absl::Duration wall =
        RunOnThreads(workers, [&](int w) { Consumer(&shared, w, &drain); });
    // Latencies here are each message's wait in amqp_consume_message plus
    // its ack's send: acks get no reply in AMQP, so unlike the broker's
    // RecordDecision and Redis's XACK nothing confirms they are on disk.
    ok = ReportBenchPhase(label, "drain", plan.concurrency, workers,
                          drain.Summarize(wall), shared.n) &&
         ok && !shared.broken;
    if (shared.redelivered > 0) {
      std::cerr << "referral_bench_rabbitmq: " << shared.redelivered
                << " deliveries were redeliveries\n";
    }
  }

  if (const int64_t probes = plan.e2e; probes > 0) {
    ok = ReportBenchPhase(label, "e2e", 1, 1, EndToEnd(shared, type, probes)) &&
         ok;
  }
  amqp_queue_delete(admin.get(), kChannel, Bytes(shared.queue), 0, 0);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace referral::clients

int main(int argc, char** argv) { return referral::clients::Main(argc, argv); }
