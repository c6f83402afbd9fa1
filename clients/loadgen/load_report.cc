#include "load_report.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace referral::clients {
namespace {

std::string JsonString(absl::string_view s) {
  return nlohmann::json(std::string(s))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ErrorsText(absl::string_view name, const LatencySummary& s) {
  if (s.errors.empty()) return "";
  std::vector<std::string> parts;
  for (const auto& [code, count] : s.errors) {
    parts.push_back(absl::StrCat(code, "=", count));
  }
  return absl::StrCat(name, " ", absl::StrJoin(parts, " "));
}

}  // namespace

bool LoadSucceeded(const LoadOptions& options, const LoadReport& report) {
  return report.failed_rpcs() == 0 &&
         (!options.drain || report.drain_complete) &&
         (!report.has_e2e || report.e2e.failed == 0);
}

std::string FormatLoadReport(const LoadOptions& options,
                             const LoadReport& report) {
  std::string out = absl::StrFormat(
      "referral_loadgen n=%d concurrency=%d batch=%d drain=%s\n", options.n,
      options.concurrency, options.batch, options.drain ? "true" : "false");
  absl::StrAppend(&out, "submit   ", FormatSummary(report.submit), "\n");
  if (options.drain) {
    absl::StrAppend(&out, "claim    ", FormatSummary(report.claim),
                    " claimed=", report.claimed, "\n");
    absl::StrAppend(&out, "decide   ", FormatSummary(report.decide), "\n");
    if (report.release.ok + report.release.failed > 0) {
      absl::StrAppend(&out, "release  ", FormatSummary(report.release),
                      " foreign=", report.foreign, "\n");
    }
  }
  if (report.has_e2e) {
    absl::StrAppend(&out, "e2e      ", FormatSummary(report.e2e), "\n");
  }
  for (const auto& [queue, submitted] : report.submitted_per_queue) {
    const auto decided = report.decided_per_queue.find(queue);
    absl::StrAppend(
        &out, "queue    ", queue, " submitted=", submitted, " decided=",
        decided == report.decided_per_queue.end() ? 0 : decided->second, "\n");
  }
  if (report.duplicates > 0) {
    absl::StrAppend(&out, "note     ", report.duplicates,
                    " submissions were duplicates (idempotency keys reused "
                    "from an earlier run) and were not drained\n");
  }
  std::vector<std::string> errors;
  for (const auto& [name, summary] :
       {std::pair<absl::string_view, const LatencySummary*>{"submit",
                                                            &report.submit},
        {"claim", &report.claim},
        {"decide", &report.decide},
        {"release", &report.release}}) {
    const std::string text = ErrorsText(name, *summary);
    if (!text.empty()) errors.push_back(text);
  }
  absl::StrAppend(&out, "errors   ",
                  errors.empty() ? "none" : absl::StrJoin(errors, "; "), "\n");
  std::vector<std::string> problems;
  if (report.failed_rpcs() > 0) {
    problems.push_back(absl::StrCat(report.failed_rpcs(), " RPCs failed"));
  }
  if (report.has_e2e && report.e2e.failed > 0) {
    problems.push_back(
        absl::StrCat(report.e2e.failed, " end-to-end probes failed"));
  }
  if (options.drain && !report.drain_complete) {
    problems.push_back(absl::StrCat(
        "drain incomplete", report.drain_note.empty()
                                ? ""
                                : absl::StrCat(": ", report.drain_note)));
  }
  absl::StrAppend(
      &out, "result   ",
      problems.empty()
          ? "OK"
          : absl::StrCat("FAILED (", absl::StrJoin(problems, "; "), ")"),
      "\n");
  return out;
}

std::string LoadReportJson(const LoadOptions& options,
                           const LoadReport& report) {
  std::vector<std::string> queues;
  for (const auto& [queue, submitted] : report.submitted_per_queue) {
    const auto decided = report.decided_per_queue.find(queue);
    queues.push_back(absl::StrCat(
        JsonString(queue), ":{\"submitted\":", submitted, ",\"decided\":",
        decided == report.decided_per_queue.end() ? 0 : decided->second, "}"));
  }
  std::string out = absl::StrCat(
      "{\"n\":", options.n, ",\"concurrency\":", options.concurrency,
      ",\"batch\":", options.batch,
      ",\"drain\":", options.drain ? "true" : "false",
      ",\"submit\":", SummaryJson(report.submit));
  if (options.drain) {
    absl::StrAppend(
        &out, ",\"claim\":", SummaryJson(report.claim),
        ",\"decide\":", SummaryJson(report.decide),
        ",\"release\":", SummaryJson(report.release),
        ",\"claimed\":", report.claimed, ",\"foreign\":", report.foreign,
        ",\"drain_complete\":", report.drain_complete ? "true" : "false",
        ",\"drain_note\":", JsonString(report.drain_note));
  }
  absl::StrAppend(
      &out, absl::StrFormat(",\"submit_p999_ms\":%.3f", report.submit.p999_ms));
  if (report.has_e2e) {
    absl::StrAppend(&out, ",\"e2e\":", SummaryJson(report.e2e));
  }
  absl::StrAppend(&out, ",\"duplicates\":", report.duplicates, ",\"queues\":{",
                  absl::StrJoin(queues, ","), "}",
                  ",\"failed_rpcs\":", report.failed_rpcs(),
                  ",\"ok\":", LoadSucceeded(options, report) ? "true" : "false",
                  "}");
  return out;
}

}  // namespace referral::clients
