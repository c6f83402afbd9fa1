#include "bench_report.h"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

ABSL_FLAG(std::string, payload, "",
          "file of bytes to send (or write) as each message: the serialized "
          "referral of referral_loadgen --write_payload");

namespace referral::clients {

std::optional<std::string> StartBench(int argc, char** argv,
                                      absl::string_view program) {
  absl::ParseCommandLine(argc, argv);
  const std::string path = absl::GetFlag(FLAGS_payload);
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  if (!in) {
    std::cerr << program << ": --payload: cannot read " << path << "\n";
    return std::nullopt;
  }
  if (bytes.empty()) {
    std::cerr << program << ": --payload: " << path << " is empty\n";
    return std::nullopt;
  }
  return bytes;
}

void BenchRecorder::Merge(const std::vector<double>& latencies_ms,
                          int64_t failed) {
  absl::MutexLock lock(&mu_);
  latencies_ms_.insert(latencies_ms_.end(), latencies_ms.begin(),
                       latencies_ms.end());
  failed_ += failed;
}

BenchSummary BenchRecorder::Summarize(absl::Duration wall) const {
  absl::MutexLock lock(&mu_);
  return SummarizeLatencies(latencies_ms_, failed_, wall);
}

std::string BenchJsonLine(absl::string_view system, absl::string_view phase,
                          int concurrency, int clients, const BenchSummary& s) {
  return absl::StrFormat(
      "{\"system\":\"%s\",\"phase\":\"%s\",\"concurrency\":%d,"
      "\"clients\":%d,\"ok\":%d,\"failed\":%d,\"seconds\":%.3f,"
      "\"per_second\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
      "\"p999_ms\":%.3f,\"max_ms\":%.3f}",
      system, phase, concurrency, clients, s.ok, s.failed, s.seconds,
      s.per_second, s.p50_ms, s.p99_ms, s.p999_ms, s.max_ms);
}

bool ReportBenchPhase(absl::string_view system, absl::string_view phase,
                      int concurrency, int clients, const BenchSummary& s,
                      int64_t expected) {
  std::cout << BenchJsonLine(system, phase, concurrency, clients, s)
            << std::endl;
  return s.failed == 0 && (expected < 0 || s.ok == expected);
}

int BenchWindow(int concurrency, int clients, int index) {
  clients = std::max(1, clients);
  return concurrency / clients + (index < concurrency % clients ? 1 : 0);
}

absl::Duration RunOnThreads(int count, absl::FunctionRef<void(int)> body) {
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  threads.reserve(count);
  for (int i = 0; i < count; ++i) threads.emplace_back([body, i] { body(i); });
  for (std::thread& t : threads) t.join();
  return absl::Now() - start;
}

bool RunBenchIntake(
    absl::string_view system, int concurrency, int clients, int64_t n,
    absl::FunctionRef<void(int window, BenchRecorder* recorder)> client) {
  if (n <= 0) return true;
  BenchRecorder intake;
  const absl::Duration wall = RunOnThreads(clients, [&](int i) {
    client(BenchWindow(concurrency, clients, i), &intake);
  });
  return ReportBenchPhase(system, "intake", concurrency, clients,
                          intake.Summarize(wall), n);
}

}  // namespace referral::clients
