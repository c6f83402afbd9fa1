// referral_loadgen: submits many fictitious referrals to the broker with
// many calls in flight, then drains them through claim and decision as
// triage would, and reports throughput and latency per operation. Exit
// status: 0 when every call succeeded and (when draining) every submitted
// referral was decided; 1 otherwise; 2 for a usage error.
//
// Run it against a broker kept for load testing: it submits thousands of
// referrals and decides them as "no further action".
#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker_channel.h"
#include "cli_args.h"
#include "connection_flags.h"
#include "decision_names.h"
#include "fictitious_referral.h"
#include "load_generator.h"
#include "referral_json.h"

ABSL_FLAG(int64_t, n, 10000, "referrals to submit");
ABSL_FLAG(int, concurrency, 64, "submission calls in flight at once");
ABSL_FLAG(int, batch, 1,
          "referrals per call: 1 uses SubmitReferral, 2..500 use "
          "SubmitReferrals (concurrency x batch referrals in flight)");
ABSL_FLAG(int, channels, 1, "HTTP/2 connections to spread calls over");
ABSL_FLAG(std::string, referral, "",
          "protobuf JSON referral to submit (default: a built-in ~2 KB "
          "fictitious police referral)");
ABSL_FLAG(int64_t, first_index, 0,
          "number the fictitious children from here, so that successive "
          "runs against one broker do not repeat each other's children");
ABSL_FLAG(bool, vary_children, true,
          "give each submission's children their own fictitious names, "
          "dates of birth and NHS numbers, so they are not all linked as "
          "repeated concerns");
ABSL_FLAG(std::string, agency, "loadgen", "referrer.agency_id to submit as");
ABSL_FLAG(std::string, key_prefix, "",
          "idempotency key prefix (default: loadgen-<random>-)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "deadline per call");
ABSL_FLAG(bool, drain, true, "claim and decide what was submitted");
ABSL_FLAG(std::string, queue, "",
          "queue to drain (default: every queue the submissions went to)");
ABSL_FLAG(int, claim_batch, 50, "ClaimReferrals max per call (1..100)");
ABSL_FLAG(int, drain_workers, 4, "concurrent claim loops");
ABSL_FLAG(int, lease_seconds, 0, "lease length (0: broker default)");
ABSL_FLAG(std::string, decision, "no-further-action", "decision to record");
ABSL_FLAG(bool, decide_any, false,
          "decide whatever the drain claims (not only this run's "
          "referrals) until as many as were submitted are decided; only on "
          "a broker kept for load testing");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Minutes(10),
          "give up draining after this long");
ABSL_FLAG(bool, json, false, "print the report as one JSON line");
ABSL_FLAG(std::string, write_payload, "",
          "write the built-in fictitious referral, serialized (binary "
          "protobuf), to this file and exit: the payload deploy/bench.sh "
          "sends to every system");
ABSL_FLAG(std::string, payload_file, "",
          "submit the referral serialized in this file (from "
          "--write_payload); byte for byte with --vary_children=false, "
          "otherwise with each submission's children varied");
ABSL_FLAG(int64_t, e2e_probes, 0,
          "after the load, time this many referrals one at a time from "
          "submit until claimed (then decided)");

namespace referral::clients {
namespace {

constexpr char kProgram[] = "referral_loadgen";
constexpr const char* kOwnFlags[] = {"server",
                                     "ca",
                                     "cert",
                                     "key",
                                     "tls_server_name",
                                     "n",
                                     "concurrency",
                                     "batch",
                                     "channels",
                                     "referral",
                                     "vary_children",
                                     "first_index",
                                     "agency",
                                     "key_prefix",
                                     "timeout",
                                     "drain",
                                     "queue",
                                     "claim_batch",
                                     "drain_workers",
                                     "lease_seconds",
                                     "decision",
                                     "decide_any",
                                     "drain_timeout",
                                     "json",
                                     "write_payload",
                                     "payload_file",
                                     "e2e_probes"};

int Usage(absl::string_view message) {
  std::cerr << kProgram << ": " << message << "\n";
  return 2;
}

void PrintHelp() {
  std::cout << "usage: " << kProgram << " [--flag=value ...]\n\n";
  for (const char* name : kOwnFlags) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::cout << absl::StrFormat("  --%-17s %s (default: %s)\n", name,
                                 flag->Help(), flag->DefaultValue());
  }
}

std::string RandomRunId() {
  std::random_device device;
  return absl::StrFormat("%08x", device());
}

int Main(int argc, char** argv) {
  const std::vector<std::string> raw(argv + 1, argv + argc);
  absl::StatusOr<SplitArgs> split =
      SplitCommandLine(raw, [](absl::string_view name) -> std::optional<bool> {
        for (const char* own : kOwnFlags) {
          if (name == own) {
            return absl::FindCommandLineFlag(name)->IsOfType<bool>();
          }
        }
        return std::nullopt;
      });
  if (!split.ok()) return Usage(split.status().message());
  if (split->help) {
    PrintHelp();
    return 0;
  }
  if (!split->positional.empty()) {
    return Usage(
        absl::StrCat("unexpected argument \"", split->positional[0], "\""));
  }
  std::vector<std::string> given;
  for (const FlagArg& arg : split->flags) {
    given.push_back(arg.name);
    std::string error;
    if (!absl::FindCommandLineFlag(arg.name)->ParseFrom(arg.value, &error)) {
      return Usage(absl::StrCat("invalid value for --", arg.name, ": ", error));
    }
  }

  LoadOptions options;
  options.n = absl::GetFlag(FLAGS_n);
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.batch = absl::GetFlag(FLAGS_batch);
  options.rpc_timeout = absl::GetFlag(FLAGS_timeout);
  options.drain = absl::GetFlag(FLAGS_drain);
  options.queue = absl::GetFlag(FLAGS_queue);
  options.claim_batch = absl::GetFlag(FLAGS_claim_batch);
  options.drain_workers = absl::GetFlag(FLAGS_drain_workers);
  options.lease_seconds = absl::GetFlag(FLAGS_lease_seconds);
  options.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  options.decide_any = absl::GetFlag(FLAGS_decide_any);
  options.key_prefix = absl::GetFlag(FLAGS_key_prefix);
  if (options.key_prefix.empty()) {
    options.key_prefix = absl::StrCat("loadgen-", RandomRunId(), "-");
  }
  if (options.n < 0) return Usage("--n must not be negative");
  if (options.concurrency < 1) return Usage("--concurrency must be >= 1");
  if (options.batch < 1 || options.batch > 500) {
    return Usage("--batch must be 1..500");
  }
  if (options.claim_batch < 1 || options.claim_batch > 100) {
    return Usage("--claim_batch must be 1..100");
  }
  if (options.drain_workers < 1) return Usage("--drain_workers must be >= 1");
  if (options.rpc_timeout <= absl::ZeroDuration()) {
    return Usage("--timeout must be positive");
  }
  const int channel_count = absl::GetFlag(FLAGS_channels);
  if (channel_count < 1 || channel_count > 64) {
    return Usage("--channels must be 1..64");
  }
  absl::StatusOr<referral::v1::Decision> decision =
      ParseDecision(absl::GetFlag(FLAGS_decision));
  if (!decision.ok()) return Usage(decision.status().message());
  options.decision = *decision;

  const std::string agency = absl::GetFlag(FLAGS_agency);
  const bool vary = absl::GetFlag(FLAGS_vary_children);
  if (const std::string path = absl::GetFlag(FLAGS_write_payload);
      !path.empty()) {
    const std::string bytes =
        MakeFictitiousReferral(0, agency, absl::Now()).SerializeAsString();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
    out.close();
    if (!out) return Usage(absl::StrCat("cannot write ", path));
    std::cout << path << ": " << bytes.size() << " bytes\n";
    return 0;
  }
  if (!absl::GetFlag(FLAGS_referral).empty() &&
      !absl::GetFlag(FLAGS_payload_file).empty()) {
    return Usage("give --referral or --payload_file, not both");
  }
  const int64_t e2e_probes = absl::GetFlag(FLAGS_e2e_probes);
  if (e2e_probes < 0) return Usage("--e2e_probes must not be negative");
  ReferralSource source;
  if (const std::string path = absl::GetFlag(FLAGS_payload_file);
      !path.empty()) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)),
                            std::istreambuf_iterator<char>());
    referral::v1::Referral base;
    if (!in || bytes.empty() || !base.ParseFromString(bytes)) {
      return Usage(absl::StrCat(path, " does not hold a serialized referral"));
    }
    // Sent as a field of SubmitReferralRequest, the message is serialized
    // again: make sure that gives back exactly the file's bytes.
    if (base.SerializeAsString() != bytes) {
      return Usage(absl::StrCat(path, " does not re-serialize byte for byte"));
    }
    source = [base = std::move(base), vary](int64_t index) {
      referral::v1::Referral r = base;
      if (vary) VaryChildren(index, &r);
      return r;
    };
  } else if (const std::string path = absl::GetFlag(FLAGS_referral);
             !path.empty()) {
    absl::StatusOr<referral::v1::Referral> loaded = LoadReferralJson(path);
    if (!loaded.ok()) return Usage(loaded.status().message());
    source = [base = *std::move(loaded), agency, vary](int64_t index) {
      referral::v1::Referral r = base;
      r.mutable_referrer()->set_agency_id(agency);
      if (vary) VaryChildren(index, &r);
      return r;
    };
  } else {
    const absl::Time now = absl::Now();
    source = [agency, now](int64_t index) {
      return MakeFictitiousReferral(index, agency, now);
    };
  }

  ChannelOptions channel_options = ChannelOptionsFromFlags(given, true);
  channel_options.user_agent = "referral_loadgen";
  channel_options.dedicated_connection = channel_count > 1;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < channel_count; ++i) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        ConnectToBroker(channel_options);
    if (!channel.ok()) return Usage(channel.status().message());
    channels.push_back(*std::move(channel));
  }

  if (const int64_t first = absl::GetFlag(FLAGS_first_index); first != 0) {
    if (first < 0) return Usage("--first_index must not be negative");
    source = [inner = std::move(source), first](int64_t index) {
      return inner(first + index);
    };
  }
  LoadReport report = RunLoad(channels, options, source);
  if (e2e_probes > 0) {
    report.e2e = MeasureEndToEnd(channels[0], options, source, e2e_probes);
    report.has_e2e = true;
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << LoadReportJson(options, report) << std::endl;
  } else {
    std::cout << FormatLoadReport(options, report) << std::flush;
  }
  return LoadSucceeded(options, report) ? 0 : 1;
}

}  // namespace
}  // namespace referral::clients

int main(int argc, char** argv) { return referral::clients::Main(argc, argv); }
