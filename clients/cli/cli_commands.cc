#include "cli_commands.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "broker_channel.h"
#include "cli_command_kit.h"
#include "decision_names.h"

namespace referral::clients {
namespace {

std::string FlagUsage(absl::string_view flag, bool required) {
  static const auto* const kForms =
      new std::vector<std::pair<absl::string_view, absl::string_view>>{
          {"idempotency_key", "--idempotency_key=KEY"},
          {"agency", "--agency=ID"},
          {"page_size", "--page_size=N"},
          {"page_token", "--page_token=T"},
          {"max", "--max=N"},
          {"lease_seconds", "--lease_seconds=N"},
          {"worker", "--worker=NAME"},
          {"token", "--token=T"},
          {"reason", "--reason=TEXT"},
          {"decision", "--decision=NAME"},
          {"rationale", "--rationale=TEXT"},
          {"feedback", "--feedback=TEXT"},
          {"since", "--since=DURATION"},
          {"limit", "--limit=N"},
          {"watch_seconds", "--watch_seconds=N"},
          {"watch_count", "--watch_count=N"},
          {"backup_id", "--backup_id=N"},
          {"service", "--service=NAME"},
      };
  std::string form = absl::StrCat("--", flag);
  for (const auto& [name, usage] : *kForms) {
    if (name == flag) form = std::string(usage);
  }
  return required ? form : absl::StrCat("[", form, "]");
}

// "decide REFERRAL_ID --token=T ... [--feedback=TEXT]".
std::string CommandLine(const CommandSpec& spec) {
  std::vector<std::string> parts = {spec.name};
  if (!spec.arguments.empty()) parts.push_back(spec.arguments);
  for (const std::string& flag : spec.flags) {
    const bool required =
        std::find(spec.required_flags.begin(), spec.required_flags.end(),
                  flag) != spec.required_flags.end();
    parts.push_back(FlagUsage(flag, required));
  }
  return absl::StrJoin(parts, " ");
}

}  // namespace

int UsageError(const CliEnv& env, absl::string_view command,
               absl::string_view message) {
  *env.err << kProgram << " " << command << ": " << message << "\n";
  return kExitUsage;
}

int RpcError(const CliEnv& env, absl::string_view command,
             const absl::Status& status) {
  *env.err << kProgram << " " << command << ": "
           << StatusCodeName(status.code()) << ": " << status.message() << "\n";
  return kExitRpcError;
}

std::string PageLine(absl::string_view what, int count,
                     absl::string_view next_page_token) {
  return absl::StrCat("page ", what, "=", count,
                      " next_page_token=", QuoteValue(next_page_token));
}

const std::vector<CommandSpec>& Commands() {
  static const auto* const kCommands = [] {
    auto* commands = new std::vector<CommandSpec>();
    for (const auto* audience : {&AgencyCommands(), &TriageCommands(),
                                 &OpsCommands(), &AdminCommands()}) {
      commands->insert(commands->end(), audience->begin(), audience->end());
    }
    return commands;
  }();
  return *kCommands;
}

const CommandSpec* FindCommand(absl::string_view name) {
  for (const CommandSpec& spec : Commands()) {
    if (spec.name == name) return &spec;
  }
  // Accept "dead_letters" for people who type flags with underscores.
  if (name == "dead_letters") return FindCommand("dead-letters");
  return nullptr;
}

bool IsCommandGroup(absl::string_view word) {
  return word == "agencies" || word == "triage" || word == "ops" ||
         word == "admin";
}

std::string CommandUsage(absl::string_view program, const CommandSpec& spec) {
  return absl::StrCat("usage: ", program, " ", CommandLine(spec));
}

std::string UsageText(absl::string_view program) {
  std::string out = absl::StrCat(
      "usage: ", program,
      " [--server=HOST:PORT] [--json] [--timeout=DURATION] [TLS flags]\n"
      "    COMMAND [ARGS] [FLAGS]\n"
      "\n"
      "Talks to the referral broker (default 127.0.0.1:50051). A command may "
      "be\npreceded by its group name (",
      program, " triage claim ...).\n");
  const std::array<std::pair<absl::string_view, absl::string_view>, 4> groups =
      {{{"agencies", "Partner agencies"},
        {"triage", "Front-door triage"},
        {"ops", "Operations"},
        {"admin", "Administrators"}}};
  for (const auto& [group, title] : groups) {
    absl::StrAppend(&out, "\n", title, ":\n");
    for (const CommandSpec& spec : Commands()) {
      if (spec.group != group) continue;
      absl::StrAppend(&out, "  ", CommandLine(spec), "\n      ", spec.summary,
                      "\n");
    }
  }
  absl::StrAppend(
      &out,
      "\nGlobal flags:\n"
      "  --server=HOST:PORT   broker address (default 127.0.0.1:50051)\n"
      "  --json               print responses as protobuf JSON, one per line\n"
      "  --timeout=DURATION   deadline per call, e.g. 10s (default 30s; "
      "health 5s,\n"
      "                       backup 10m)\n"
      "  --on_behalf_of=NAME  staff member the call is made for; sent to the\n"
      "                       broker's audit trail (x-referral-on-behalf-of)\n"
      "\nTLS flags (the broker requires mutual TLS unless run for "
      "development):\n"
      "  --ca=FILE            PEM CA bundle the broker's certificate must "
      "chain\n"
      "                       to; turns TLS on (default: $REFERRAL_CA)\n"
      "  --cert=FILE          PEM client certificate, identified by its URI "
      "SAN\n"
      "                       spiffe://referral-broker/NAME or CN "
      "(default:\n"
      "                       $REFERRAL_CERT)\n"
      "  --key=FILE           PEM private key of --cert (default: "
      "$REFERRAL_KEY)\n"
      "  --tls_server_name=NAME  name the broker's certificate must carry "
      "when\n"
      "                       it is not the --server host\n"
      "  --plaintext          no TLS whatever the variables say: a "
      "development\n"
      "                       broker, or the broker's plaintext health port\n"
      "  A flag given on the command line, even empty, wins over its\n"
      "  environment variable.\n"
      "\nDecisions: ",
      absl::StrJoin(DecisionShortNames(), ", "),
      "\n           (or DECISION_* names; aliases nfa, s17, s47)\n"
      "\nExit status: 0 success; 1 the broker returned an error (its status "
      "code\nis printed), or health is not SERVING, or audit-verify or backup "
      "verify\nfound damage; 2 usage error or invalid input file.\n");
  return out;
}

int RunCommand(const CommandSpec& spec, const CliEnv& env,
               const std::vector<std::string>& args,
               const std::vector<std::string>& given_flags) {
  const int count = static_cast<int>(args.size());
  if (count < spec.min_args || count > spec.max_args) {
    const std::string expected = spec.max_args == 0
                                     ? "takes no arguments"
                                     : absl::StrCat("expects ", spec.arguments);
    return UsageError(
        env, spec.name,
        absl::StrCat(expected, "\n", CommandUsage(kProgram, spec)));
  }
  for (const std::string& flag : spec.required_flags) {
    if (std::find(given_flags.begin(), given_flags.end(), flag) ==
        given_flags.end()) {
      return UsageError(env, spec.name,
                        absl::StrCat("--", flag, " is required\n",
                                     CommandUsage(kProgram, spec)));
    }
  }
  return spec.run(env, args);
}

std::string NewIdempotencyKey() {
  std::random_device device;
  std::array<uint32_t, 4> words;
  for (uint32_t& w : words) w = device();
  // Version 4 (random) and the RFC 4122 variant bits.
  words[1] = (words[1] & 0xFFFF0FFFu) | 0x00004000u;
  words[2] = (words[2] & 0x3FFFFFFFu) | 0x80000000u;
  return absl::StrFormat("%08x-%04x-%04x-%04x-%04x%08x", words[0],
                         words[1] >> 16, words[1] & 0xFFFF, words[2] >> 16,
                         words[2] & 0xFFFF, words[3]);
}

}  // namespace referral::clients
