#include "bench_report.h"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "latency_stats.h"

namespace referral::clients {

absl::StatusOr<std::string> ReadBenchPayload(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  if (bytes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is empty"));
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
  std::vector<double> latencies;
  BenchSummary summary;
  {
    absl::MutexLock lock(&mu_);
    latencies = latencies_ms_;
    summary.failed = failed_;
  }
  std::sort(latencies.begin(), latencies.end());
  summary.ok = static_cast<int64_t>(latencies.size());
  summary.seconds = absl::ToDoubleSeconds(wall);
  summary.per_second = summary.seconds > 0
                           ? static_cast<double>(summary.ok) / summary.seconds
                           : 0;
  // Percentile sorts its copy again; already sorted, that is cheap.
  summary.p50_ms = Percentile(latencies, 50);
  summary.p99_ms = Percentile(latencies, 99);
  summary.p999_ms = Percentile(latencies, 99.9);
  summary.max_ms = latencies.empty() ? 0 : latencies.back();
  return summary;
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

int BenchWindow(int concurrency, int clients, int index) {
  clients = std::max(1, clients);
  return concurrency / clients + (index < concurrency % clients ? 1 : 0);
}

BenchSummary RunBenchIntake(
    absl::string_view system, int concurrency, int clients,
    absl::FunctionRef<void(int window, BenchRecorder* recorder)> client) {
  BenchRecorder intake;
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  threads.reserve(clients);
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back(client, BenchWindow(concurrency, clients, i), &intake);
  }
  for (std::thread& t : threads) t.join();
  const BenchSummary summary = intake.Summarize(absl::Now() - start);
  std::cout << BenchJsonLine(system, "intake", concurrency, clients, summary)
            << std::endl;
  return summary;
}

}  // namespace referral::clients
