// referral_bench_floor: the floors the broker is compared against in
// deploy/bench.sh. --mode=fdatasync appends the payload to a file in --dir
// and fdatasyncs after every write, one at a time (or, --preallocate,
// overwrites a file already written and synced): the best a durable
// single-writer store can do per acknowledged write on this disk.
// --mode=grpc runs an in-process gRPC server whose one unary method does
// nothing, and calls it on loopback with --concurrency calls in flight
// over --clients connections, sending the same payload: the ceiling of
// any gRPC service on this machine at that concurrency. Prints one JSON
// line (bench_report.h). Exit 0 when every operation succeeded.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench_report.h"
#include "floor/empty_rpc.grpc.pb.h"

ABSL_FLAG(std::string, mode, "fdatasync", "fdatasync or grpc");
ABSL_FLAG(std::string, dir, "/tmp",
          "fdatasync: directory on the disk to measure (the data disk)");
ABSL_FLAG(int64_t, n, 2000, "operations to measure");
ABSL_FLAG(bool, preallocate, false,
          "fdatasync: write the file in full and sync it first, then "
          "overwrite it in place (as a log that preallocates, like "
          "RocksDB's WAL, so a sync carries no size change); otherwise "
          "append (as Redis's append-only file does)");
ABSL_FLAG(absl::Duration, max_time, absl::Seconds(10),
          "stop after this long even if --n is not reached");
ABSL_FLAG(int, concurrency, 1, "grpc: calls in flight");
ABSL_FLAG(int, clients, 1, "grpc: connections to spread them over");

namespace referral::clients {
namespace {

namespace bench = ::referral::bench::v1;

int Fdatasync(const std::string& payload) {
  const std::string path = absl::StrCat(absl::GetFlag(FLAGS_dir),
                                        "/referral_bench_fdatasync.", getpid());
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    std::cerr << "referral_bench_floor: open " << path << ": "
              << std::strerror(errno) << "\n";
    return 1;
  }
  const int64_t n = absl::GetFlag(FLAGS_n);
  const bool preallocate = absl::GetFlag(FLAGS_preallocate);
  if (preallocate) {
    const std::string zeros(payload.size(), '\0');
    for (int64_t i = 0; i < n; ++i) {
      if (write(fd, zeros.data(), zeros.size()) !=
          static_cast<ssize_t>(zeros.size())) {
        std::cerr << "referral_bench_floor: cannot preallocate " << path
                  << "\n";
        close(fd);
        unlink(path.c_str());
        return 1;
      }
    }
    fsync(fd);
    lseek(fd, 0, SEEK_SET);
  }
  const absl::Time give_up = absl::Now() + absl::GetFlag(FLAGS_max_time);
  std::vector<double> latencies;
  latencies.reserve(static_cast<size_t>(n));
  int64_t failed = 0;
  const absl::Time start = absl::Now();
  // Appends, like a write-ahead log or an append-only file: each sync also
  // carries the file's new size, as theirs do.
  for (int64_t i = 0; i < n && absl::Now() < give_up; ++i) {
    const absl::Time t0 = absl::Now();
    const ssize_t written = write(fd, payload.data(), payload.size());
    if (written != static_cast<ssize_t>(payload.size()) || fdatasync(fd) != 0) {
      ++failed;
      continue;
    }
    latencies.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
  }
  const absl::Duration wall = absl::Now() - start;
  close(fd);
  unlink(path.c_str());
  BenchRecorder recorder;
  recorder.Merge(latencies, failed);
  std::cout << BenchJsonLine(
                   preallocate ? "fdatasync_prealloc" : "fdatasync_append",
                   "floor", 1, 1, recorder.Summarize(wall))
            << std::endl;
  return failed == 0 ? 0 : 1;
}

class EmptyService final : public bench::EmptyRpc::CallbackService {
  grpc::ServerUnaryReactor* Call(grpc::CallbackServerContext* context,
                                 const bench::EmptyRpcRequest*,
                                 bench::EmptyRpcResponse*) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// Keeps one connection's share of the calls in flight: each completion
// starts the next, as referral_loadgen does.
struct GrpcRun {
  std::vector<std::unique_ptr<bench::EmptyRpc::Stub>> stubs;
  bench::EmptyRpcRequest request;
  int64_t n = 0;
  std::atomic<int64_t> next{0};
  absl::Mutex mu;
  int64_t done ABSL_GUARDED_BY(mu) = 0;
  std::vector<double> latencies ABSL_GUARDED_BY(mu);
  int64_t failed ABSL_GUARDED_BY(mu) = 0;
};

class EmptyCall : public grpc::ClientUnaryReactor {
 public:
  EmptyCall(GrpcRun* run, size_t stub) : run_(run), stub_(stub) {
    run_->stubs[stub]->async()->Call(&context_, &run_->request, &response_,
                                     this);
    start_ = absl::Now();
    StartCall();
  }

  void OnDone(const grpc::Status& status) override {
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - start_);
    GrpcRun* run = run_;
    const size_t stub = stub_;
    delete this;
    {
      absl::MutexLock lock(&run->mu);
      if (status.ok()) {
        run->latencies.push_back(ms);
      } else {
        ++run->failed;
      }
      ++run->done;
    }
    Issue(run, stub);
  }

  static void Issue(GrpcRun* run, size_t stub) {
    if (run->next.fetch_add(1) >= run->n) return;
    new EmptyCall(run, stub);  // deletes itself in OnDone
  }

 private:
  GrpcRun* run_;
  size_t stub_;
  grpc::ClientContext context_;
  bench::EmptyRpcResponse response_;
  absl::Time start_;
};

int Grpc(const std::string& payload) {
  EmptyService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "referral_bench_floor: cannot start the gRPC server\n";
    return 1;
  }
  const int concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  const int clients =
      std::max(1, std::min(absl::GetFlag(FLAGS_clients), concurrency));
  GrpcRun run;
  run.request.set_payload(payload);
  run.n = absl::GetFlag(FLAGS_n);
  for (int i = 0; i < clients; ++i) {
    // A distinct channel argument per client: its own TCP connection, as
    // separate clients would have, not one shared subchannel.
    grpc::ChannelArguments args;
    args.SetInt("referral.bench.client", i);
    run.stubs.push_back(bench::EmptyRpc::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                  grpc::InsecureChannelCredentials(), args)));
  }
  const absl::Time start = absl::Now();
  for (int i = 0; i < concurrency; ++i) {
    EmptyCall::Issue(&run, static_cast<size_t>(i % clients));
  }
  {
    absl::MutexLock lock(&run.mu);
    run.mu.AwaitWithTimeout(absl::Condition(
                                +[](GrpcRun* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                                     r->mu) { return r->done >= r->n; },
                                &run),
                            absl::GetFlag(FLAGS_max_time) + absl::Seconds(30));
  }
  const absl::Duration wall = absl::Now() - start;
  BenchRecorder recorder;
  int64_t failed = 0;
  {
    absl::MutexLock lock(&run.mu);
    recorder.Merge(run.latencies, run.failed);
    failed = run.failed + (run.n - run.done);
  }
  std::cout << BenchJsonLine("empty_rpc", "floor", concurrency, clients,
                             recorder.Summarize(wall))
            << std::endl;
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  return failed == 0 ? 0 : 1;
}

int Main(int argc, char** argv) {
  const std::optional<std::string> payload =
      StartBench(argc, argv, "referral_bench_floor");
  if (!payload.has_value()) return 2;
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "fdatasync") return Fdatasync(*payload);
  if (mode == "grpc") return Grpc(*payload);
  std::cerr << "referral_bench_floor: --mode must be fdatasync or grpc\n";
  return 2;
}

}  // namespace
}  // namespace referral::clients

int main(int argc, char** argv) { return referral::clients::Main(argc, argv); }
