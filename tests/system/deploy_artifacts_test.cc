// The deployment artifacts under deploy/ (Dockerfile, docker-compose.yml,
// the systemd unit, the Kubernetes manifests, the Prometheus configuration
// and alert rules, the Grafana dashboard) checked against the tree, the
// built binaries and the tools that judge them: promtool, systemd-analyze,
// the broker's own --check-config, and (where installed) kubectl.
//
// No Docker engine runs on the project's machines, so the Dockerfile is
// parsed here rather than built: its build stage must run the same
// deploy/install-deps.sh and deploy/build.sh that CI runs, copy out only
// what that build produced (checked in this build tree), and install every
// shared library the built binaries link; its runtime stage must run the
// broker unprivileged with the settings and volumes the tests below check.
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "support/broker_process.h"

namespace referral {
namespace {

namespace fs = std::filesystem;
using ::google::protobuf::Value;
using ::referral::testing::BrokerProcess;
using ::referral::testing::BrokerProcessOptions;
using ::referral::testing::CommandResult;
using ::referral::testing::RunCommand;
using ::referral::testing::TempDir;

constexpr char kPython[] = "/usr/bin/python3";
constexpr char kPromtool[] = "/usr/bin/promtool";
constexpr char kSystemdAnalyze[] = "/usr/bin/systemd-analyze";
constexpr char kSystemdSysusers[] = "/usr/bin/systemd-sysusers";
constexpr char kSystemdTmpfiles[] = "/usr/bin/systemd-tmpfiles";
constexpr char kKubectl[] = "/usr/bin/kubectl";

// Where the image and the unit install the binaries and read the settings.
constexpr char kInstalledBroker[] = "/usr/local/bin/referral_broker";
constexpr char kInstalledCli[] = "/usr/local/bin/referral_cli";
constexpr char kInstalledSettings[] = "/etc/referral-broker/broker.txtpb";

// The highest `systemd-analyze security --offline=yes` exposure the unit may
// have (0 is fully locked down, 10 fully exposed). Measured 1.1 with
// systemd 252 (what remains is mostly the network access a server needs);
// removing any one protection worth 0.2 or more fails the test.
constexpr double kMaxSystemdExposure = 1.2;

// Every metric the broker exports (docs/operations.md, "Metrics").
// Dashboards and alert rules may use no other name, so that they cannot
// drift from the broker.
const std::set<std::string>& BrokerMetricNames() {
  static const auto* const kNames = new std::set<std::string>{
      "referral_queue_ready_referrals",
      "referral_queue_claimed_referrals",
      "referral_queue_dead_letter_referrals",
      "referral_queue_oldest_ready_age_seconds",
      "referral_queue_oldest_ready_past_due_seconds",
      "referral_queue_overdue_referrals",
      "referral_queue_due_within_hour_referrals",
      "referral_outcomes_unacknowledged_referrals",
      "referral_outcomes_unacknowledged_overdue_referrals",
      "referral_outcomes_oldest_unacknowledged_age_seconds",
      "referral_intake_total",
      "referral_decisions_total",
      "referral_lease_expiries_total",
      "referral_redeliveries_total",
      "referral_dead_letters_total",
      "grpc_server_handling_seconds",
      "grpc_server_handled_total",
      "referral_store_disk_bytes",
      "referral_store_pending_compaction_bytes",
      "referral_store_group_commit_seconds",
      "referral_store_group_commit_mutations",
      "referral_store_writable",
      "referral_broker_serving",
      "referral_broker_build_info",
  };
  return *kNames;
}

// ---------------------------------------------------------------------------
// Files and commands

std::string Repo(const std::string& relative) {
  return absl::StrCat(REFERRAL_SOURCE_DIR, "/", relative);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

void WriteFile(const std::string& path, const std::string& contents) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

bool IsExecutable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

// Runs a command and fails the calling test (returning an empty result with
// exit code -1) if it could not be started.
CommandResult RunTool(const std::vector<std::string>& argv) {
  absl::StatusOr<CommandResult> result = RunCommand(argv);
  EXPECT_TRUE(result.ok()) << absl::StrJoin(argv, " ") << ": "
                           << result.status();
  return result.ok() ? *result : CommandResult{};
}

std::string Output(const CommandResult& result) {
  return absl::StrCat(result.out, result.err);
}

// The build tree this test belongs to: REFERRAL_BROKER_BIN is
// <build>/server/referral_broker.
std::string BuildTree() {
  const std::string broker = REFERRAL_BROKER_BIN;
  absl::string_view tree = broker;
  EXPECT_TRUE(absl::ConsumeSuffix(&tree, "/server/referral_broker")) << broker;
  return std::string(tree);
}

// ---------------------------------------------------------------------------
// JSON and YAML, through protobuf's JSON parser into google.protobuf.Value.

const Value& NullValue() {
  static const auto* const kNull = new Value();
  return *kNull;
}

absl::StatusOr<Value> ParseJson(const std::string& json) {
  Value value;
  auto status = google::protobuf::util::JsonStringToMessage(json, &value);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not JSON: ", std::string(status.message())));
  }
  return value;
}

// Every YAML document in `path`, as a list, through PyYAML's safe loader.
absl::StatusOr<Value> LoadYamlDocuments(const std::string& path) {
  absl::StatusOr<CommandResult> result = RunCommand(
      {kPython, "-c",
       "import json, sys, yaml\n"
       "with open(sys.argv[1]) as f:\n"
       "    docs = [d for d in yaml.safe_load_all(f) if d is not None]\n"
       "json.dump(docs, sys.stdout, default=str)\n",
       path});
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     " does not parse as YAML (python3 with PyYAML, "
                     "Debian package python3-yaml): ",
                     result->err));
  }
  return ParseJson(result->out);
}

// The single document of a one-document YAML file.
Value LoadYaml(const std::string& path) {
  absl::StatusOr<Value> docs = LoadYamlDocuments(path);
  EXPECT_TRUE(docs.ok()) << docs.status();
  if (!docs.ok()) return Value();
  EXPECT_EQ(docs->list_value().values_size(), 1) << path;
  if (docs->list_value().values_size() != 1) return Value();
  return docs->list_value().values(0);
}

const Value& Field(const Value& value, const std::string& key) {
  if (!value.has_struct_value()) return NullValue();
  const auto& fields = value.struct_value().fields();
  auto it = fields.find(key);
  return it == fields.end() ? NullValue() : it->second;
}

const Value& At(const Value& value, const std::vector<std::string>& path) {
  const Value* current = &value;
  for (const std::string& key : path) current = &Field(*current, key);
  return *current;
}

std::string Str(const Value& value) {
  if (value.has_number_value()) {
    return absl::StrCat(value.number_value());
  }
  return value.string_value();
}

int Int(const Value& value) { return static_cast<int>(value.number_value()); }

std::vector<Value> List(const Value& value) {
  return {value.list_value().values().begin(),
          value.list_value().values().end()};
}

// The document of `docs` with the given kind and name.
Value FindObject(const Value& docs, const std::string& kind,
                 const std::string& name) {
  for (const Value& doc : List(docs)) {
    if (Str(Field(doc, "kind")) == kind &&
        Str(At(doc, {"metadata", "name"})) == name) {
      return doc;
    }
  }
  ADD_FAILURE() << "no " << kind << " named " << name;
  return Value();
}

// The element of a list whose "name" is `name`.
Value Named(const Value& list, const std::string& name) {
  for (const Value& item : List(list)) {
    if (Str(Field(item, "name")) == name) return item;
  }
  ADD_FAILURE() << "no element named " << name;
  return Value();
}

// ---------------------------------------------------------------------------
// Broker settings (protobuf text format, one scalar per line).

using Settings = std::map<std::string, std::string>;

Settings ParseSettings(const std::string& text) {
  Settings settings;
  static const std::regex kLine(
      R"re(^\s*([a-z_]+)\s*:\s*(?:"([^"]*)"|([^\s#]+))\s*(#.*)?$)re");
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::string s(line);
    std::smatch m;
    if (std::regex_match(s, m, kLine)) {
      settings[m[1]] = m[2].matched ? m[2].str() : m[3].str();
    }
  }
  return settings;
}

Settings ImageSettings() {
  return ParseSettings(ReadFile(Repo("deploy/config/broker.txtpb")));
}

int PortOf(const std::string& address) {
  int port = -1;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    ADD_FAILURE() << "no port in " << address;
  }
  return port;
}

int SettingSeconds(const Settings& settings, const std::string& name,
                   int default_value) {
  auto it = settings.find(name);
  if (it == settings.end()) return default_value;
  int value = 0;
  EXPECT_TRUE(absl::SimpleAtoi(it->second, &value)) << name;
  return value;
}

// Seconds the broker may take to shut down cleanly, before closing the
// store: the drain, then the grace for in-flight calls.
int ShutdownSeconds(const Settings& settings) {
  return SettingSeconds(settings, "shutdown_drain_seconds", 0) +
         SettingSeconds(settings, "shutdown_grace_seconds", 10);
}

// Every setting that names a file or directory.
std::vector<std::pair<std::string, std::string>> PathSettings(
    const Settings& settings) {
  std::vector<std::pair<std::string, std::string>> paths;
  for (const auto& [name, value] : settings) {
    if ((absl::EndsWith(name, "_file") || absl::EndsWith(name, "_dir")) &&
        !value.empty()) {
      paths.emplace_back(name, value);
    }
  }
  return paths;
}

// ---------------------------------------------------------------------------
// A Dockerfile: instructions (continuations joined, comments dropped)
// grouped into stages.

struct Instruction {
  std::string keyword;    // upper case
  std::string arguments;  // the rest of the logical line
  int line = 0;           // where it starts
};

struct Stage {
  std::string base;  // FROM image
  std::string name;  // AS name
  std::vector<Instruction> instructions;

  std::vector<Instruction> All(const std::string& keyword) const {
    std::vector<Instruction> found;
    for (const Instruction& i : instructions) {
      if (i.keyword == keyword) found.push_back(i);
    }
    return found;
  }
};

std::vector<std::string> Words(absl::string_view text) {
  return absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
}

absl::StatusOr<std::vector<Stage>> ParseDockerfile(const std::string& text) {
  std::vector<Instruction> instructions;
  std::string pending;
  int pending_line = 0;
  int number = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++number;
    std::string line(absl::StripTrailingAsciiWhitespace(raw));
    const absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(line);
    // Comment and empty lines are dropped, also inside a continued
    // instruction.
    if (trimmed.empty() || absl::StartsWith(trimmed, "#")) continue;
    if (pending.empty()) pending_line = number;
    if (absl::EndsWith(line, "\\")) {
      line.pop_back();
      absl::StrAppend(&pending, line, " ");
      continue;
    }
    absl::StrAppend(&pending, line);
    const std::string logical(absl::StripAsciiWhitespace(pending));
    pending.clear();
    const size_t space = logical.find_first_of(" \t");
    Instruction instruction;
    instruction.keyword = absl::AsciiStrToUpper(logical.substr(0, space));
    instruction.arguments =
        space == std::string::npos
            ? ""
            : std::string(absl::StripAsciiWhitespace(logical.substr(space)));
    instruction.line = pending_line;
    instructions.push_back(std::move(instruction));
  }
  if (!pending.empty()) {
    return absl::InvalidArgumentError("the file ends inside a continuation");
  }
  std::vector<Stage> stages;
  for (Instruction& instruction : instructions) {
    if (instruction.keyword == "FROM") {
      std::vector<std::string> words = Words(instruction.arguments);
      words.erase(std::remove_if(words.begin(), words.end(),
                                 [](const std::string& w) {
                                   return absl::StartsWith(w, "--");
                                 }),
                  words.end());
      if (words.size() != 1 &&
          !(words.size() == 3 && absl::AsciiStrToUpper(words[1]) == "AS")) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", instruction.line, ": bad FROM"));
      }
      Stage stage;
      stage.base = words[0];
      if (words.size() == 3) stage.name = words[2];
      stages.push_back(std::move(stage));
      continue;
    }
    if (stages.empty()) {
      if (instruction.keyword == "ARG") continue;
      return absl::InvalidArgumentError(absl::StrCat("line ", instruction.line,
                                                     ": ", instruction.keyword,
                                                     " before the first FROM"));
    }
    stages.back().instructions.push_back(std::move(instruction));
  }
  return stages;
}

// An exec-form argument list: ["a", "b"].
std::vector<std::string> ExecForm(const std::string& arguments) {
  absl::StatusOr<Value> value = ParseJson(arguments);
  EXPECT_TRUE(value.ok() && value->has_list_value())
      << "not an exec-form (JSON) list: " << arguments;
  std::vector<std::string> argv;
  if (!value.ok()) return argv;
  for (const Value& item : List(*value)) argv.push_back(item.string_value());
  return argv;
}

// A COPY instruction: its --from stage (or empty), sources and destination.
struct Copy {
  std::string from;
  std::vector<std::string> sources;
  std::string destination;
};

Copy ParseCopy(const Instruction& instruction) {
  Copy copy;
  std::vector<std::string> words;
  if (absl::StartsWith(instruction.arguments, "[")) {
    words = ExecForm(instruction.arguments);
  } else {
    for (const std::string& word : Words(instruction.arguments)) {
      if (absl::StartsWith(word, "--from=")) {
        copy.from = word.substr(7);
      } else if (!absl::StartsWith(word, "--")) {
        words.push_back(word);
      }
    }
  }
  if (words.size() < 2) {
    ADD_FAILURE() << "line " << instruction.line << ": COPY needs a source "
                  << "and a destination";
    return copy;
  }
  copy.destination = words.back();
  copy.sources.assign(words.begin(), words.end() - 1);
  return copy;
}

// Where a copied source lands: into the destination when it is a
// directory (ends in "/") or takes several sources, else at it.
std::string CopyTarget(const Copy& copy, const std::string& source) {
  if (absl::EndsWith(copy.destination, "/") || copy.sources.size() > 1) {
    return absl::StrCat(absl::StripSuffix(copy.destination, "/"), "/",
                        fs::path(source).filename().string());
  }
  return copy.destination;
}

struct Dockerfile {
  Stage build;
  Stage runtime;
};

Dockerfile LoadDockerfile() {
  absl::StatusOr<std::vector<Stage>> stages =
      ParseDockerfile(ReadFile(Repo("deploy/Dockerfile")));
  EXPECT_TRUE(stages.ok()) << stages.status();
  if (!stages.ok() || stages->size() != 2) {
    ADD_FAILURE() << "deploy/Dockerfile must have two stages, build and "
                     "runtime";
    return {};
  }
  return {(*stages)[0], (*stages)[1]};
}

std::string OnlyArguments(const Stage& stage, const std::string& keyword) {
  std::vector<Instruction> found = stage.All(keyword);
  EXPECT_EQ(found.size(), 1u) << "the runtime stage needs one " << keyword;
  return found.empty() ? "" : found[0].arguments;
}

// The packages named by the runtime stage's `apt-get install`.
std::set<std::string> AptInstalled(const Stage& stage) {
  std::set<std::string> packages;
  for (const Instruction& run : stage.All("RUN")) {
    std::vector<std::string> words = Words(run.arguments);
    for (size_t i = 0; i + 1 < words.size(); ++i) {
      if (words[i] != "apt-get" || words[i + 1] != "install") continue;
      for (size_t j = i + 2; j < words.size() && words[j] != "&&"; ++j) {
        if (!absl::StartsWith(words[j], "-")) packages.insert(words[j]);
      }
    }
  }
  return packages;
}

// The Debian packages owning the shared libraries the binaries link.
std::set<std::string> RuntimePackagesOf(
    const std::vector<std::string>& binaries) {
  std::set<std::string> libraries;
  static const std::regex kLibrary(R"(=>\s+(/\S+)\s+\()");
  for (const std::string& binary : binaries) {
    CommandResult ldd = RunTool({"/usr/bin/ldd", binary});
    EXPECT_EQ(ldd.exit_code, 0) << Output(ldd);
    for (absl::string_view line : absl::StrSplit(ldd.out, '\n')) {
      std::string s(line);
      std::smatch m;
      if (std::regex_search(s, m, kLibrary)) {
        libraries.insert(fs::canonical(m[1].str()).string());
      }
    }
  }
  // Debian 12 is merged-/usr, but dpkg records some libraries under /lib:
  // ask for both spellings in one dpkg call.
  std::vector<std::string> query = {"/usr/bin/dpkg", "-S"};
  for (const std::string& library : libraries) {
    query.push_back(library);
    if (absl::StartsWith(library, "/usr/lib/")) {
      query.push_back(library.substr(4));
    } else if (absl::StartsWith(library, "/lib/")) {
      query.push_back("/usr" + library);
    }
  }
  std::map<std::string, std::string> owner;  // /usr/lib/... -> package
  for (absl::string_view line :
       absl::StrSplit(RunTool(query).out, '\n', absl::SkipEmpty())) {
    const size_t separator = line.find(": ");
    if (separator == absl::string_view::npos) continue;
    std::string path(line.substr(separator + 2));
    if (absl::StartsWith(path, "/lib/")) path = "/usr" + path;
    const absl::string_view package = line.substr(0, line.find(':'));
    owner[path] = std::string(package);
  }
  std::set<std::string> packages;
  for (const std::string& library : libraries) {
    const std::string key =
        absl::StartsWith(library, "/lib/") ? "/usr" + library : library;
    EXPECT_TRUE(owner.count(key))
        << "the binaries link " << library << ", which no Debian package owns";
    if (owner.count(key)) packages.insert(owner[key]);
  }
  return packages;
}

// ---------------------------------------------------------------------------
// A container filesystem laid out under a temporary root, so that the
// broker's --check-config can judge the settings with the files the
// container would see.

class Layout {
 public:
  const std::string& root() const { return dir_.path(); }
  std::string Host(const std::string& container_path) const {
    return absl::StrCat(root(), container_path);
  }
  void Put(const std::string& container_path, const std::string& contents,
           fs::perms mode = fs::perms::owner_read | fs::perms::owner_write) {
    WriteFile(Host(container_path), contents);
    fs::permissions(Host(container_path), mode);
  }
  void MakeDirectory(const std::string& container_path) {
    fs::create_directories(Host(container_path));
  }

  // Runs `referral_broker --check-config` on the settings file at
  // `settings_path` in the container, with every absolute path in it moved
  // under the root.
  CommandResult CheckConfig(const std::string& settings_path) {
    std::string text = ReadFile(Host(settings_path));
    for (const auto& [name, value] : PathSettings(ParseSettings(text))) {
      EXPECT_TRUE(absl::StartsWith(value, "/"))
          << name << " should be an absolute path in a container";
      text =
          absl::StrReplaceAll(text, {{absl::StrCat("\"", value, "\""),
                                      absl::StrCat("\"", Host(value), "\"")}});
    }
    const std::string moved = absl::StrCat(root(), "/check.txtpb");
    WriteFile(moved, text);
    return RunTool({REFERRAL_BROKER_BIN, "--check-config",
                    absl::StrCat("--config_file=", moved)});
  }

 private:
  TempDir dir_;
};

// The development PKI and encryption key made by the commands
// docs/deployment.md and docker-compose.yml give, once per test program.
const std::string& DevSecrets() {
  static const TempDir* const kDir = new TempDir();
  static const std::string* const kPath = [] {
    auto* path = new std::string(kDir->Sub("dev-secrets"));
    CommandResult certs =
        RunTool({"/bin/bash", Repo("deploy/make-dev-certs.sh"), *path});
    EXPECT_EQ(certs.exit_code, 0) << Output(certs);
    CommandResult key =
        RunTool({"/bin/bash", Repo("deploy/make-encryption-key.sh"),
                 *path + "/encryption.key"});
    EXPECT_EQ(key.exit_code, 0) << Output(key);
    return path;
  }();
  return *kPath;
}

// ===========================================================================
// Dockerfile

TEST(Dockerfile, BuildsOnBookwormAndRunsOnBookwormSlim) {
  absl::StatusOr<std::vector<Stage>> stages =
      ParseDockerfile(ReadFile(Repo("deploy/Dockerfile")));
  ASSERT_TRUE(stages.ok()) << stages.status();
  ASSERT_EQ(stages->size(), 2u);
  EXPECT_EQ((*stages)[0].base, "debian:bookworm");
  EXPECT_EQ((*stages)[0].name, "build");
  EXPECT_EQ((*stages)[1].base, "debian:bookworm-slim");
}

TEST(Dockerfile, BuildStageRunsTheInstallAndBuildScriptsThatCiRuns) {
  const Dockerfile docker = LoadDockerfile();
  std::vector<std::string> runs;
  for (const Instruction& run : docker.build.All("RUN")) {
    runs.push_back(run.arguments);
  }
  EXPECT_EQ(runs, (std::vector<std::string>{"bash deploy/install-deps.sh",
                                            "bash deploy/build.sh"}));
  // CI runs the same scripts outside Docker: .ci/run -> deploy/test.sh ->
  // deploy/build.sh -> deploy/install-deps.sh, building into build/.
  EXPECT_TRUE(absl::StrContains(ReadFile(Repo(".ci/run")), "deploy/test.sh"));
  EXPECT_TRUE(
      absl::StrContains(ReadFile(Repo("deploy/test.sh")), "deploy/build.sh"));
  const std::string build_script = ReadFile(Repo("deploy/build.sh"));
  EXPECT_TRUE(absl::StrContains(build_script, "deploy/install-deps.sh"));
  EXPECT_TRUE(absl::StrContains(build_script, "-B build "));

  // Each script is copied in before it runs, and so is every directory the
  // top-level CMakeLists.txt builds.
  std::set<std::string> copied;
  for (const Instruction& instruction : docker.build.instructions) {
    if (instruction.keyword == "COPY") {
      for (const std::string& source : ParseCopy(instruction).sources) {
        copied.insert(source);
      }
    }
    if (instruction.keyword == "RUN") {
      for (const std::string& word : Words(instruction.arguments)) {
        if (absl::StartsWith(word, "deploy/")) {
          EXPECT_TRUE(copied.count(word))
              << word << " runs before it is copied in";
        }
      }
    }
  }
  EXPECT_TRUE(copied.count("CMakeLists.txt"));
  static const std::regex kSubdirectory(R"(add_subdirectory\((\w+)\))");
  const std::string cmake = ReadFile(Repo("CMakeLists.txt"));
  int subdirectories = 0;
  for (std::sregex_iterator it(cmake.begin(), cmake.end(), kSubdirectory), end;
       it != end; ++it, ++subdirectories) {
    EXPECT_TRUE(copied.count((*it)[1].str()))
        << "the build stage does not copy " << (*it)[1].str() << "/";
  }
  EXPECT_GE(subdirectories, 5);  // proto storage server clients tests
  EXPECT_EQ(OnlyArguments(docker.build, "WORKDIR"), "/src");
}

TEST(Dockerfile, CopiesFromTheBuildStageOnlyWhatTheBuildProduced) {
  const Dockerfile docker = LoadDockerfile();
  // deploy/build.sh builds into build/ under the build stage's WORKDIR.
  const std::string build_output = "/src/build/";
  std::set<std::string> installed;
  for (const Instruction& instruction : docker.runtime.All("COPY")) {
    const Copy copy = ParseCopy(instruction);
    if (copy.from.empty()) continue;
    EXPECT_EQ(copy.from, "build");
    for (const std::string& source : copy.sources) {
      ASSERT_TRUE(absl::StartsWith(source, build_output))
          << source << " is not in the build output " << build_output;
      const std::string here =
          absl::StrCat(BuildTree(), "/", source.substr(build_output.size()));
      EXPECT_TRUE(IsExecutable(here))
          << source << " is copied from the build stage, but this build "
          << "made no " << here;
      installed.insert(CopyTarget(copy, source));
    }
  }
  EXPECT_TRUE(installed.count(kInstalledBroker));
  EXPECT_TRUE(installed.count(kInstalledCli));
}

TEST(Dockerfile, LocalCopySourcesExistInTheRepository) {
  const Dockerfile docker = LoadDockerfile();
  for (const Stage* stage : {&docker.build, &docker.runtime}) {
    for (const Instruction& instruction : stage->All("COPY")) {
      const Copy copy = ParseCopy(instruction);
      if (!copy.from.empty()) continue;
      for (const std::string& source : copy.sources) {
        EXPECT_TRUE(fs::exists(Repo(source)))
            << "deploy/Dockerfile:" << instruction.line << " copies " << source
            << ", which is not in the repository";
      }
    }
  }
}

TEST(Dockerfile, RuntimeStageInstallsEveryLibraryTheBinariesLink) {
  const std::set<std::string> listed = AptInstalled(LoadDockerfile().runtime);
  ASSERT_FALSE(listed.empty()) << "no apt-get install in the runtime stage";
  std::set<std::string> needed = RuntimePackagesOf(
      {REFERRAL_BROKER_BIN, REFERRAL_CLI_BIN, REFERRAL_RESTORE_BIN});
  needed.erase("libc6");  // essential: in every Debian image
  EXPECT_TRUE(needed.count("libgrpc++1.51"));  // the lookup found something
  for (const std::string& package : needed) {
    EXPECT_TRUE(listed.count(package))
        << "the binaries link a library from " << package
        << ", which the runtime stage does not install";
  }
  // The names are real packages (installed on this build machine too), and
  // the calendar's time zone database is there.
  for (const std::string& package : listed) {
    CommandResult query =
        RunTool({"/usr/bin/dpkg-query", "-W", "-f=${Status}", package});
    EXPECT_TRUE(absl::StrContains(query.out, "install ok installed"))
        << package << " is not a Debian package installed here";
  }
  EXPECT_TRUE(listed.count("tzdata"));
}

TEST(Dockerfile, RunsTheBrokerUnprivilegedWithVolumesPortsAndHealthCheck) {
  const Dockerfile docker = LoadDockerfile();
  const Settings settings = ImageSettings();

  // A fixed, non-root uid, created in this stage.
  const std::string user = OnlyArguments(docker.runtime, "USER");
  const std::string uid = std::string(user.substr(0, user.find(':')));
  int uid_number = -1;
  ASSERT_TRUE(absl::SimpleAtoi(uid, &uid_number)) << "USER " << user;
  EXPECT_GT(uid_number, 0);
  bool created = false;
  for (const Instruction& run : docker.runtime.All("RUN")) {
    created |= absl::StrContains(run.arguments, "useradd") &&
               absl::StrContains(run.arguments, "--uid " + uid);
  }
  EXPECT_TRUE(created) << "no useradd --uid " << uid << " in the runtime stage";

  // The entrypoint runs the installed broker on the image's settings.
  const std::vector<std::string> entrypoint =
      ExecForm(OnlyArguments(docker.runtime, "ENTRYPOINT"));
  EXPECT_EQ(entrypoint,
            (std::vector<std::string>{
                kInstalledBroker,
                absl::StrCat("--config_file=", kInstalledSettings)}));
  std::set<std::string> copied_in;
  for (const Instruction& instruction : docker.runtime.All("COPY")) {
    const Copy copy = ParseCopy(instruction);
    for (const std::string& source : copy.sources) {
      copied_in.insert(CopyTarget(copy, source));
    }
  }
  EXPECT_TRUE(copied_in.count(kInstalledSettings));

  // data_dir and backup_dir are volumes; every port the settings serve on
  // is exposed.
  const std::vector<std::string> volumes =
      ExecForm(OnlyArguments(docker.runtime, "VOLUME"));
  for (const char* setting : {"data_dir", "backup_dir"}) {
    ASSERT_TRUE(settings.count(setting)) << setting;
    EXPECT_TRUE(
        std::count(volumes.begin(), volumes.end(), settings.at(setting)))
        << setting << " " << settings.at(setting) << " is not a VOLUME";
  }
  std::set<std::string> exposed;
  for (const std::string& port :
       Words(OnlyArguments(docker.runtime, "EXPOSE"))) {
    exposed.insert(port);
  }
  for (const char* setting : {"listen", "health_listen", "metrics_listen"}) {
    ASSERT_TRUE(settings.count(setting)) << setting;
    EXPECT_TRUE(exposed.count(absl::StrCat(PortOf(settings.at(setting)))))
        << setting << " is not exposed";
    // A container is reached from outside its loopback.
    EXPECT_TRUE(absl::StartsWith(settings.at(setting), "0.0.0.0:") ||
                absl::StartsWith(settings.at(setting), "[::]:"))
        << setting << " " << settings.at(setting);
  }

  // The health check asks the plaintext health port with the installed CLI.
  const std::string healthcheck = OnlyArguments(docker.runtime, "HEALTHCHECK");
  const size_t cmd = healthcheck.find(" CMD ");
  ASSERT_NE(cmd, std::string::npos) << healthcheck;
  const std::vector<std::string> check = ExecForm(healthcheck.substr(cmd + 5));
  ASSERT_GE(check.size(), 3u);
  EXPECT_EQ(check[0], kInstalledCli);
  EXPECT_EQ(check[1], "health");
  EXPECT_TRUE(std::count(check.begin(), check.end(),
                         absl::StrCat("--server=127.0.0.1:",
                                      PortOf(settings.at("health_listen")))))
      << healthcheck;
}

TEST(Dockerfile, HealthCheckCommandReportsAServingBroker) {
  const Dockerfile docker = LoadDockerfile();
  const std::string healthcheck = OnlyArguments(docker.runtime, "HEALTHCHECK");
  const size_t cmd = healthcheck.find(" CMD ");
  ASSERT_NE(cmd, std::string::npos);
  std::vector<std::string> check = ExecForm(healthcheck.substr(cmd + 5));
  ASSERT_FALSE(check.empty());

  // The same command, with this build's CLI, against a broker started here
  // (its main port serves the health service too).
  TempDir dir;
  BrokerProcessOptions options;
  options.data_dir = dir.Sub("data");
  options.log_file = dir.Sub("broker.log");
  absl::StatusOr<std::unique_ptr<BrokerProcess>> broker =
      BrokerProcess::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  check[0] = REFERRAL_CLI_BIN;
  for (std::string& arg : check) {
    if (absl::StartsWith(arg, "--server=")) {
      arg = absl::StrCat("--server=", (*broker)->address());
    }
  }
  CommandResult result = RunTool(check);
  EXPECT_EQ(result.exit_code, 0) << absl::StrJoin(check, " ") << "\n"
                                 << Output(result);
  EXPECT_TRUE(absl::StrContains(result.out, "SERVING")) << result.out;
}

// ===========================================================================
// docker-compose.yml

TEST(DockerCompose, RunsTheImageAndAPrometheusThatScrapesIt) {
  const Value compose = LoadYaml(Repo("deploy/docker-compose.yml"));
  const Value& broker = At(compose, {"services", "broker"});
  const Value& prometheus = At(compose, {"services", "prometheus"});
  ASSERT_TRUE(broker.has_struct_value());
  ASSERT_TRUE(prometheus.has_struct_value());

  // The broker is built from deploy/Dockerfile with the repository as
  // context.
  const std::string context =
      Repo(absl::StrCat("deploy/", Str(At(broker, {"build", "context"}))));
  EXPECT_EQ(fs::canonical(context), fs::canonical(Repo("")));
  EXPECT_TRUE(fs::exists(
      absl::StrCat(context, "/", Str(At(broker, {"build", "dockerfile"})))));

  // Compose waits long enough for a clean shutdown.
  int stop_seconds = 0;
  const std::string grace = Str(Field(broker, "stop_grace_period"));
  ASSERT_TRUE(absl::EndsWith(grace, "s")) << grace;
  ASSERT_TRUE(
      absl::SimpleAtoi(grace.substr(0, grace.size() - 1), &stop_seconds));
  EXPECT_GT(stop_seconds, ShutdownSeconds(ImageSettings()));

  // Only loopback ports are published.
  for (const Value& service : {broker, prometheus}) {
    for (const Value& port : List(Field(service, "ports"))) {
      EXPECT_TRUE(absl::StartsWith(Str(port), "127.0.0.1:")) << Str(port);
    }
  }

  // Prometheus mounts the scrape configuration and the alert rules, and
  // scrapes the broker service's metrics port under the alerts' job name.
  std::map<std::string, std::string> mounts;
  for (const Value& volume : List(Field(prometheus, "volumes"))) {
    std::vector<std::string> parts = absl::StrSplit(Str(volume), ':');
    if (parts.size() >= 2) mounts[parts[1]] = parts[0];
  }
  EXPECT_EQ(mounts["/etc/prometheus/prometheus.yml"],
            "./prometheus/prometheus.yml");
  EXPECT_EQ(mounts["/etc/prometheus/alerts.yml"], "./prometheus/alerts.yml");
  const Value scrape = LoadYaml(Repo("deploy/prometheus/prometheus.yml"));
  const Value job = List(Field(scrape, "scrape_configs")).at(0);
  EXPECT_EQ(Str(Field(job, "job_name")), "referral-broker");
  const Value targets =
      Field(List(Field(job, "static_configs")).at(0), "targets");
  ASSERT_EQ(targets.list_value().values_size(), 1);
  EXPECT_EQ(
      Str(targets.list_value().values(0)),
      absl::StrCat("broker:", PortOf(ImageSettings().at("metrics_listen"))));
}

TEST(DockerCompose, MountsExistOrAreMadeByTheDocumentedScripts) {
  const Value compose = LoadYaml(Repo("deploy/docker-compose.yml"));
  std::set<std::string> named_volumes;
  for (const auto& [name, unused] :
       Field(compose, "volumes").struct_value().fields()) {
    named_volumes.insert(name);
  }
  for (const auto& [service_name, service] :
       Field(compose, "services").struct_value().fields()) {
    for (const Value& volume : List(Field(service, "volumes"))) {
      std::vector<std::string> parts = absl::StrSplit(Str(volume), ':');
      ASSERT_GE(parts.size(), 2u) << Str(volume);
      const std::string& source = parts[0];
      if (!absl::StartsWith(source, ".")) {
        EXPECT_TRUE(named_volumes.count(source))
            << service_name << " mounts undeclared volume " << source;
        continue;
      }
      if (absl::StartsWith(source, "./dev-secrets/")) {
        EXPECT_TRUE(fs::exists(absl::StrCat(
            DevSecrets(), "/", source.substr(strlen("./dev-secrets/")))))
            << source << " is not made by make-dev-certs.sh or "
            << "make-encryption-key.sh";
      } else {
        EXPECT_TRUE(fs::exists(Repo(absl::StrCat("deploy/", source))))
            << service_name << " mounts " << source << ", which is missing";
      }
    }
  }
}

// The broker's settings in the image, with the files the image carries and
// the files compose mounts, pass the broker's own --check-config.
TEST(DockerCompose, ImageSettingsPassCheckConfigWithTheComposeMounts) {
  Layout layout;
  const Dockerfile docker = LoadDockerfile();
  for (const Instruction& instruction : docker.runtime.All("COPY")) {
    const Copy copy = ParseCopy(instruction);
    if (!copy.from.empty()) continue;
    for (const std::string& source : copy.sources) {
      layout.Put(CopyTarget(copy, source), ReadFile(Repo(source)));
    }
  }
  for (const std::string& volume :
       ExecForm(OnlyArguments(docker.runtime, "VOLUME"))) {
    layout.MakeDirectory(volume);
  }
  const Value compose = LoadYaml(Repo("deploy/docker-compose.yml"));
  for (const Value& volume :
       List(At(compose, {"services", "broker", "volumes"}))) {
    std::vector<std::string> parts = absl::StrSplit(Str(volume), ':');
    ASSERT_GE(parts.size(), 2u) << Str(volume);
    const std::string& source = parts[0];
    const std::string& target = parts[1];
    if (!absl::StartsWith(source, ".")) {
      layout.MakeDirectory(target);
    } else if (absl::StartsWith(source, "./dev-secrets/")) {
      layout.Put(target, ReadFile(absl::StrCat(
                             DevSecrets(), "/",
                             source.substr(strlen("./dev-secrets/")))));
    } else {
      layout.Put(target, ReadFile(Repo(absl::StrCat("deploy/", source))));
    }
  }
  CommandResult check = layout.CheckConfig(kInstalledSettings);
  EXPECT_EQ(check.exit_code, 0) << Output(check);
  EXPECT_TRUE(absl::StrContains(Output(check), "config OK")) << Output(check);
}

// ===========================================================================
// systemd

struct Unit {
  std::multimap<std::string, std::string> entries;  // "Section.Key" -> value
  std::string Get(const std::string& key) const {
    auto it = entries.find(key);
    return it == entries.end() ? "<unset>" : it->second;
  }
};

Unit ParseUnit(const std::string& text) {
  Unit unit;
  std::string section;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    const absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    if (absl::StartsWith(line, "[")) {
      section =
          std::string(absl::StripSuffix(absl::StripPrefix(line, "["), "]"));
      continue;
    }
    const size_t equals = line.find('=');
    if (equals == absl::string_view::npos) continue;
    unit.entries.emplace(absl::StrCat(section, ".", line.substr(0, equals)),
                         std::string(line.substr(equals + 1)));
  }
  return unit;
}

// The unit as installed, with ExecStart pointing at this build's broker
// (systemd-analyze verify checks that the binary exists).
std::string UnitForThisBuild(const TempDir& dir) {
  std::string text = ReadFile(Repo("deploy/systemd/referral-broker.service"));
  EXPECT_TRUE(absl::StrContains(text, kInstalledBroker));
  text = absl::StrReplaceAll(text, {{kInstalledBroker, REFERRAL_BROKER_BIN}});
  const std::string path = dir.Sub("referral-broker.service");
  WriteFile(path, text);
  return path;
}

TEST(SystemdUnit, PassesSystemdAnalyzeVerify) {
  if (!IsExecutable(kSystemdAnalyze)) {
    GTEST_SKIP() << "systemd-analyze is not installed (Debian package "
                    "systemd): the unit file is not verified";
  }
  TempDir dir;
  const std::string unit = UnitForThisBuild(dir);
  CommandResult verify = RunTool({kSystemdAnalyze, "verify", unit});
  EXPECT_EQ(verify.exit_code, 0) << Output(verify);
  // Unknown keys and bad values are warnings with exit code 0: none may
  // name this unit.
  for (absl::string_view line : absl::StrSplit(Output(verify), '\n')) {
    EXPECT_FALSE(absl::StrContains(line, "referral-broker")) << line;
  }
}

TEST(SystemdUnit, IsHardenedAndItsExposureStaysLow) {
  const Unit unit =
      ParseUnit(ReadFile(Repo("deploy/systemd/referral-broker.service")));
  EXPECT_EQ(unit.Get("Service.User"), "referral-broker");
  EXPECT_EQ(unit.Get("Service.Group"), "referral-broker");
  EXPECT_EQ(
      unit.Get("Service.ExecStart"),
      absl::StrCat(kInstalledBroker, " --config_file=", kInstalledSettings));
  EXPECT_EQ(unit.Get("Service.ExecReload"), "/bin/kill -HUP $MAINPID");
  EXPECT_EQ(unit.Get("Service.Restart"), "on-failure");
  EXPECT_EQ(unit.Get("Service.ProtectSystem"), "strict");
  EXPECT_EQ(unit.Get("Service.ProtectHome"), "yes");
  EXPECT_EQ(unit.Get("Service.NoNewPrivileges"), "yes");
  EXPECT_EQ(unit.Get("Service.PrivateTmp"), "yes");
  EXPECT_EQ(unit.Get("Service.PrivateDevices"), "yes");
  EXPECT_EQ(unit.Get("Service.CapabilityBoundingSet"), "");
  EXPECT_EQ(unit.Get("Service.RestrictAddressFamilies"),
            "AF_INET AF_INET6 AF_UNIX");
  EXPECT_EQ(unit.Get("Service.SystemCallFilter"), "@system-service");
  EXPECT_EQ(unit.Get("Service.MemoryDenyWriteExecute"), "yes");
  EXPECT_NE(unit.Get("Service.LimitNOFILE"), "<unset>");

  // It may write data_dir (its StateDirectory) and backup_dir, nothing else.
  const Settings settings = ImageSettings();
  EXPECT_EQ(absl::StrCat("/var/lib/", unit.Get("Service.StateDirectory")),
            settings.at("data_dir"));
  EXPECT_EQ(unit.Get("Service.ReadWritePaths"), settings.at("backup_dir"));
  EXPECT_EQ(absl::StrCat("/etc/", unit.Get("Service.ConfigurationDirectory"),
                         "/broker.txtpb"),
            kInstalledSettings);

  // systemd waits for drain + grace before it would SIGKILL.
  const std::string stop_text = unit.Get("Service.TimeoutStopSec");
  absl::string_view stop = stop_text;
  absl::ConsumeSuffix(&stop, "s");
  int stop_seconds = 0;
  ASSERT_TRUE(absl::SimpleAtoi(stop, &stop_seconds)) << stop_text;
  EXPECT_GT(stop_seconds, ShutdownSeconds(settings));

  if (!IsExecutable(kSystemdAnalyze)) {
    GTEST_SKIP() << "systemd-analyze is not installed (Debian package "
                    "systemd): the exposure score is not measured";
  }
  TempDir dir;
  CommandResult security = RunTool(
      {kSystemdAnalyze, "security", "--offline=yes", UnitForThisBuild(dir)});
  EXPECT_EQ(security.exit_code, 0) << Output(security);
  static const std::regex kOverall(
      R"(Overall exposure level for referral-broker\.service: ([0-9.]+))");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(security.out, m, kOverall)) << security.out;
  double exposure = 10;
  ASSERT_TRUE(absl::SimpleAtod(m[1].str(), &exposure));
  EXPECT_LE(exposure, kMaxSystemdExposure) << security.out;
}

TEST(SystemdUnit, SysusersAndTmpfilesCreateTheAccountAndBackupDirectory) {
  if (!IsExecutable(kSystemdSysusers) || !IsExecutable(kSystemdTmpfiles)) {
    GTEST_SKIP() << "systemd-sysusers/systemd-tmpfiles are not installed "
                    "(Debian package systemd)";
  }
  // Into an empty root, as on a fresh host.
  TempDir root;
  fs::create_directories(root.Sub("etc"));
  CommandResult sysusers =
      RunTool({kSystemdSysusers, absl::StrCat("--root=", root.path()),
               Repo("deploy/systemd/referral-broker.conf")});
  ASSERT_EQ(sysusers.exit_code, 0) << Output(sysusers);
  std::string account;
  for (absl::string_view line :
       absl::StrSplit(ReadFile(root.Sub("etc/passwd")), '\n')) {
    if (absl::StartsWith(line, "referral-broker:")) account = std::string(line);
  }
  std::vector<std::string> fields = absl::StrSplit(account, ':');
  ASSERT_EQ(fields.size(), 7u) << account;
  EXPECT_EQ(fields[5], ImageSettings().at("data_dir"));  // home
  EXPECT_EQ(fields[6], "/usr/sbin/nologin");
  int uid = -1;
  ASSERT_TRUE(absl::SimpleAtoi(fields[2], &uid));
  EXPECT_GT(uid, 0);

  CommandResult tmpfiles = RunTool(
      {kSystemdTmpfiles, absl::StrCat("--root=", root.path()), "--create",
       Repo("deploy/systemd/referral-broker-tmpfiles.conf")});
  ASSERT_EQ(tmpfiles.exit_code, 0) << Output(tmpfiles);
  struct stat st {};
  const std::string backups =
      absl::StrCat(root.path(), ImageSettings().at("backup_dir"));
  ASSERT_EQ(::stat(backups.c_str(), &st), 0) << backups;
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(static_cast<int>(st.st_uid), uid);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

// ===========================================================================
// Kubernetes

Value LoadManifests() {
  Value all;
  for (const char* file :
       {"configmap.yaml", "secret.yaml", "service.yaml", "statefulset.yaml"}) {
    absl::StatusOr<Value> docs =
        LoadYamlDocuments(Repo(absl::StrCat("deploy/k8s/", file)));
    EXPECT_TRUE(docs.ok()) << docs.status();
    if (!docs.ok()) continue;
    for (const Value& doc : List(*docs)) {
      *all.mutable_list_value()->add_values() = doc;
    }
  }
  return all;
}

Value BrokerStatefulSet(const Value& manifests) {
  return FindObject(manifests, "StatefulSet", "referral-broker");
}

Value BrokerContainer(const Value& statefulset) {
  return Named(At(statefulset, {"spec", "template", "spec", "containers"}),
               "broker");
}

Settings ConfigMapSettings(const Value& manifests) {
  return ParseSettings(
      Str(At(FindObject(manifests, "ConfigMap", "referral-broker-config"),
             {"data", "broker.txtpb"})));
}

TEST(KubernetesManifests, EveryFileParsesAndDeclaresTheExpectedObjects) {
  std::multiset<std::string> objects;
  for (const auto& entry : fs::directory_iterator(Repo("deploy/k8s"))) {
    if (entry.path().extension() != ".yaml") continue;
    absl::StatusOr<Value> docs = LoadYamlDocuments(entry.path().string());
    ASSERT_TRUE(docs.ok()) << docs.status();
    for (const Value& doc : List(*docs)) {
      objects.insert(absl::StrCat(Str(Field(doc, "kind")), "/",
                                  Str(At(doc, {"metadata", "name"}))));
    }
  }
  EXPECT_EQ(objects, (std::multiset<std::string>{
                         "ConfigMap/referral-broker-config",
                         "Kustomization/",
                         "Secret/referral-broker-encryption-key",
                         "Secret/referral-broker-tls",
                         "Service/referral-broker",
                         "Service/referral-broker-headless",
                         "StatefulSet/referral-broker",
                     }));
  // `kubectl apply -k` applies everything but the Secret template.
  const Value kustomization = LoadYaml(Repo("deploy/k8s/kustomization.yaml"));
  std::set<std::string> resources;
  for (const Value& resource : List(Field(kustomization, "resources"))) {
    resources.insert(Str(resource));
    EXPECT_TRUE(fs::exists(Repo(absl::StrCat("deploy/k8s/", Str(resource)))));
  }
  EXPECT_EQ(resources, (std::set<std::string>{"configmap.yaml", "service.yaml",
                                              "statefulset.yaml"}));
}

TEST(KubernetesManifests, ConfigMapCarriesTheShippedSettingsAndRules) {
  const Value config =
      FindObject(LoadManifests(), "ConfigMap", "referral-broker-config");
  const std::vector<std::pair<std::string, std::string>> files = {
      {"broker.txtpb", "deploy/config/broker.txtpb"},
      {"routing.txtpb", "server/config/routing.txtpb"},
      {"calendar.txtpb", "server/config/calendar.txtpb"},
      {"principals.txtpb", "server/config/principals.txtpb"},
  };
  for (const auto& [key, source] : files) {
    EXPECT_EQ(Str(At(config, {"data", key})), ReadFile(Repo(source)))
        << "deploy/k8s/configmap.yaml's " << key << " differs from " << source
        << ": run bash deploy/k8s/make-configmap.sh";
  }
  EXPECT_EQ(Field(config, "data").struct_value().fields_size(), 4);
}

TEST(KubernetesManifests, SecretTemplateHoldsNoSecrets) {
  const Value manifests = LoadManifests();
  int secrets = 0;
  for (const Value& doc : List(manifests)) {
    if (Str(Field(doc, "kind")) != "Secret") continue;
    ++secrets;
    EXPECT_FALSE(Field(doc, "stringData").has_struct_value());
    ASSERT_TRUE(Field(doc, "data").has_struct_value());
    for (const auto& [key, value] :
         Field(doc, "data").struct_value().fields()) {
      EXPECT_EQ(Str(value), "") << Str(At(doc, {"metadata", "name"})) << " "
                                << key << " has a value: never commit keys";
    }
  }
  EXPECT_EQ(secrets, 2);
}

TEST(KubernetesManifests, StatefulSetRunsOneNonRootReadOnlyReplica) {
  const Value statefulset = BrokerStatefulSet(LoadManifests());
  EXPECT_EQ(Int(At(statefulset, {"spec", "replicas"})), 1);
  const Value& pod = At(statefulset, {"spec", "template", "spec"});
  const std::string user = OnlyArguments(LoadDockerfile().runtime, "USER");
  EXPECT_EQ(At(pod, {"securityContext", "runAsNonRoot"}).bool_value(), true);
  EXPECT_EQ(Str(At(pod, {"securityContext", "runAsUser"})),
            user.substr(0, user.find(':')))
      << "runAsUser differs from the image's USER";
  const Value container = BrokerContainer(statefulset);
  const Value& security = Field(container, "securityContext");
  EXPECT_TRUE(Field(security, "readOnlyRootFilesystem").bool_value());
  EXPECT_FALSE(Field(security, "allowPrivilegeEscalation").bool_value());
  EXPECT_TRUE(Field(security, "allowPrivilegeEscalation").has_bool_value());
  ASSERT_EQ(At(security, {"capabilities", "drop"}).list_value().values_size(),
            1);
  EXPECT_EQ(Str(At(security, {"capabilities", "drop"}).list_value().values(0)),
            "ALL");

  // The pod waits for the broker's drain and grace before SIGKILL.
  EXPECT_GT(Int(Field(pod, "terminationGracePeriodSeconds")),
            ShutdownSeconds(ConfigMapSettings(LoadManifests())));
}

TEST(KubernetesManifests, DataAndBackupsAreOnPersistentVolumes) {
  const Value manifests = LoadManifests();
  const Value statefulset = BrokerStatefulSet(manifests);
  std::set<std::string> claims;
  for (const Value& claim :
       List(At(statefulset, {"spec", "volumeClaimTemplates"}))) {
    claims.insert(Str(At(claim, {"metadata", "name"})));
  }
  std::map<std::string, std::string> mounted;  // path -> volume
  for (const Value& mount :
       List(Field(BrokerContainer(statefulset), "volumeMounts"))) {
    mounted[Str(Field(mount, "mountPath"))] = Str(Field(mount, "name"));
  }
  const Settings settings = ConfigMapSettings(manifests);
  for (const char* setting : {"data_dir", "backup_dir"}) {
    ASSERT_TRUE(settings.count(setting));
    const std::string& path = settings.at(setting);
    ASSERT_TRUE(mounted.count(path))
        << setting << " " << path << " is not a volume mount";
    EXPECT_TRUE(claims.count(mounted[path]))
        << setting << " is mounted from " << mounted[path]
        << ", not a volumeClaimTemplate";
  }
  // The StatefulSet's governing Service is headless.
  const Value headless = FindObject(
      manifests, "Service", Str(At(statefulset, {"spec", "serviceName"})));
  EXPECT_EQ(Str(At(headless, {"spec", "clusterIP"})), "None");
}

TEST(KubernetesManifests, ProbesAskTheGrpcHealthPortOfTheSettings) {
  const Value manifests = LoadManifests();
  const Value container = BrokerContainer(BrokerStatefulSet(manifests));
  const int health_port =
      PortOf(ConfigMapSettings(manifests).at("health_listen"));
  for (const char* probe :
       {"livenessProbe", "readinessProbe", "startupProbe"}) {
    EXPECT_EQ(Int(At(container, {probe, "grpc", "port"})), health_port)
        << probe;
  }
  EXPECT_EQ(
      Int(Field(Named(Field(container, "ports"), "health"), "containerPort")),
      health_port);
}

TEST(KubernetesManifests, ServiceExposesTheApiAndMetricsPortsOfTheSettings) {
  const Value manifests = LoadManifests();
  const Settings settings = ConfigMapSettings(manifests);
  const Value statefulset = BrokerStatefulSet(manifests);
  const Value container = BrokerContainer(statefulset);
  const Value service = FindObject(manifests, "Service", "referral-broker");
  const std::vector<std::pair<std::string, std::string>> ports = {
      {"grpc", "listen"}, {"metrics", "metrics_listen"}};
  for (const auto& [name, setting] : ports) {
    const Value port = Named(At(service, {"spec", "ports"}), name);
    EXPECT_EQ(Str(Field(port, "targetPort")), name);
    EXPECT_EQ(
        Int(Field(Named(Field(container, "ports"), name), "containerPort")),
        PortOf(settings.at(setting)))
        << name;
  }
  EXPECT_EQ(At(service, {"spec", "ports"}).list_value().values_size(), 2)
      << "the plaintext health port stays off the Service";
  // The Service selects the broker's pods.
  for (const auto& [key, value] :
       At(service, {"spec", "selector"}).struct_value().fields()) {
    EXPECT_EQ(
        Str(At(statefulset, {"spec", "template", "metadata", "labels", key})),
        Str(value))
        << key;
  }
}

// The ConfigMap's settings, with the files the projected volume puts at
// /etc/referral-broker (ConfigMap items, and the Secrets made from the
// development PKI as secret.yaml describes) and the volumes, pass the
// broker's own --check-config.
TEST(KubernetesManifests, SettingsPassCheckConfigWithTheProjectedFiles) {
  const Value manifests = LoadManifests();
  const Value statefulset = BrokerStatefulSet(manifests);
  const Value config =
      FindObject(manifests, "ConfigMap", "referral-broker-config");
  // The file each Secret key is created from (secret.yaml's commands).
  const std::map<std::string, std::string> secret_sources = {
      {"broker.pem", "server.pem"},
      {"broker.key", "server.key"},
      {"client-ca.pem", "ca.pem"},
      {"encryption.key", "encryption.key"},
  };
  std::set<std::string> secret_keys;
  for (const Value& doc : List(manifests)) {
    if (Str(Field(doc, "kind")) != "Secret") continue;
    for (const auto& [key, unused] :
         Field(doc, "data").struct_value().fields()) {
      secret_keys.insert(key);
    }
  }

  Layout layout;
  std::map<std::string, Value> volumes;
  for (const Value& volume :
       List(At(statefulset, {"spec", "template", "spec", "volumes"}))) {
    volumes[Str(Field(volume, "name"))] = volume;
  }
  std::string settings_mount;
  for (const Value& mount :
       List(Field(BrokerContainer(statefulset), "volumeMounts"))) {
    const std::string path = Str(Field(mount, "mountPath"));
    const std::string name = Str(Field(mount, "name"));
    if (!volumes.count(name)) {  // a volumeClaimTemplate
      layout.MakeDirectory(path);
      continue;
    }
    const Value& projected = Field(volumes[name], "projected");
    if (!projected.has_struct_value()) {
      layout.MakeDirectory(path);
      continue;
    }
    settings_mount = path;
    const auto mode =
        static_cast<fs::perms>(Int(Field(projected, "defaultMode")));
    for (const Value& source : List(Field(projected, "sources"))) {
      if (Field(source, "configMap").has_struct_value()) {
        EXPECT_EQ(Str(At(source, {"configMap", "name"})),
                  "referral-broker-config");
        for (const Value& item : List(At(source, {"configMap", "items"}))) {
          const Value& data = At(config, {"data", Str(Field(item, "key"))});
          EXPECT_TRUE(data.has_string_value()) << Str(Field(item, "key"));
          layout.Put(absl::StrCat(path, "/", Str(Field(item, "path"))),
                     Str(data), mode);
        }
      }
      if (Field(source, "secret").has_struct_value()) {
        for (const Value& item : List(At(source, {"secret", "items"}))) {
          const std::string key = Str(Field(item, "key"));
          EXPECT_TRUE(secret_keys.count(key))
              << key << " is not in secret.yaml";
          ASSERT_TRUE(secret_sources.count(key)) << key;
          layout.Put(
              absl::StrCat(path, "/", Str(Field(item, "path"))),
              ReadFile(absl::StrCat(DevSecrets(), "/", secret_sources.at(key))),
              mode);
        }
      }
    }
  }
  // The image's entrypoint reads its settings from the projected volume.
  EXPECT_EQ(absl::StrCat(settings_mount, "/broker.txtpb"), kInstalledSettings);
  CommandResult check = layout.CheckConfig(kInstalledSettings);
  EXPECT_EQ(check.exit_code, 0) << Output(check);
  EXPECT_TRUE(absl::StrContains(Output(check), "config OK")) << Output(check);
}

TEST(KubernetesManifests, KubectlBuildsTheKustomizationAndTheSecrets) {
  if (!IsExecutable(kKubectl)) {
    GTEST_SKIP() << "kubectl is not installed: `kubectl kustomize` and the "
                    "Secret commands of secret.yaml are not tried";
  }
  CommandResult build = RunTool({kKubectl, "kustomize", Repo("deploy/k8s")});
  EXPECT_EQ(build.exit_code, 0) << Output(build);
  EXPECT_TRUE(absl::StrContains(build.out, "kind: StatefulSet"));
  // secret.yaml's commands, client side only.
  const std::string secrets = DevSecrets();
  CommandResult tls =
      RunTool({kKubectl, "create", "secret", "generic", "referral-broker-tls",
               absl::StrCat("--from-file=broker.pem=", secrets, "/server.pem"),
               absl::StrCat("--from-file=broker.key=", secrets, "/server.key"),
               absl::StrCat("--from-file=client-ca.pem=", secrets, "/ca.pem"),
               "--dry-run=client", "-o", "yaml"});
  EXPECT_EQ(tls.exit_code, 0) << Output(tls);
  CommandResult key = RunTool(
      {kKubectl, "create", "secret", "generic",
       "referral-broker-encryption-key",
       absl::StrCat("--from-file=encryption.key=", secrets, "/encryption.key"),
       "--dry-run=client", "-o", "yaml"});
  EXPECT_EQ(key.exit_code, 0) << Output(key);
  const std::string template_text = ReadFile(Repo("deploy/k8s/secret.yaml"));
  for (const char* line :
       {"--from-file=broker.pem=", "--from-file=broker.key=",
        "--from-file=client-ca.pem=", "--from-file=encryption.key="}) {
    EXPECT_TRUE(absl::StrContains(template_text, line)) << line;
  }
}

// ===========================================================================
// Prometheus and Grafana

// The PromQL expressions of the alert rules, by alert name.
std::map<std::string, std::string> AlertExpressions() {
  std::map<std::string, std::string> alerts;
  const Value rules = LoadYaml(Repo("deploy/prometheus/alerts.yml"));
  for (const Value& group : List(Field(rules, "groups"))) {
    for (const Value& rule : List(Field(group, "rules"))) {
      alerts[Str(Field(rule, "alert"))] = Str(Field(rule, "expr"));
    }
  }
  return alerts;
}

Value Dashboard() {
  absl::StatusOr<Value> dashboard = ParseJson(
      ReadFile(Repo("deploy/grafana/referral-broker-dashboard.json")));
  EXPECT_TRUE(dashboard.ok()) << dashboard.status();
  return dashboard.ok() ? *dashboard : Value();
}

// Every query of the dashboard: panel targets and template variables.
std::vector<std::string> DashboardExpressions() {
  std::vector<std::string> expressions;
  const Value dashboard = Dashboard();
  for (const Value& panel : List(Field(dashboard, "panels"))) {
    for (const Value& target : List(Field(panel, "targets"))) {
      expressions.push_back(Str(Field(target, "expr")));
    }
  }
  for (const Value& variable : List(At(dashboard, {"templating", "list"}))) {
    if (Field(variable, "definition").has_string_value()) {
      expressions.push_back(Str(Field(variable, "definition")));
    }
  }
  return expressions;
}

std::set<std::string> MetricNamesIn(const std::string& expression) {
  std::set<std::string> names;
  static const std::regex kMetric(R"(\b(referral|grpc_server)_[a-z_]+)");
  for (std::sregex_iterator it(expression.begin(), expression.end(), kMetric),
       end;
       it != end; ++it) {
    const std::string match = it->str();
    absl::string_view name = match;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (absl::ConsumeSuffix(&name, suffix)) break;
    }
    names.insert(std::string(name));
  }
  return names;
}

TEST(PrometheusConfig, PassesPromtoolCheckConfig) {
  CommandResult check = RunTool(
      {kPromtool, "check", "config", Repo("deploy/prometheus/prometheus.yml")});
  EXPECT_EQ(check.exit_code, 0) << Output(check);
  EXPECT_TRUE(absl::StrContains(Output(check), "1 rule files found"))
      << Output(check);
}

TEST(AlertRules, PassPromtoolCheckRules) {
  CommandResult check = RunTool(
      {kPromtool, "check", "rules", Repo("deploy/prometheus/alerts.yml")});
  EXPECT_EQ(check.exit_code, 0) << Output(check);
}

TEST(AlertRules, CoverEveryConditionTheIssueNames) {
  std::set<std::string> names;
  for (const auto& [name, unused] : AlertExpressions()) names.insert(name);
  EXPECT_EQ(names, (std::set<std::string>{
                       "ReferralBrokerDown",
                       "ReferralBrokerNotServing",
                       "ReferralStoreNotWritable",
                       "ReferralQueueDepthRising",
                       "ReferralOldestPastDue",
                       "ReferralOverdue",
                       "ReferralDeadLetters",
                       "ReferralOutcomesUnacknowledged",
                   }));
  // Each one has a severity and says what to do.
  const Value rules = LoadYaml(Repo("deploy/prometheus/alerts.yml"));
  for (const Value& group : List(Field(rules, "groups"))) {
    for (const Value& rule : List(Field(group, "rules"))) {
      const std::string name = Str(Field(rule, "alert"));
      EXPECT_TRUE(absl::StrContains("critical warning",
                                    Str(At(rule, {"labels", "severity"}))))
          << name;
      for (const char* annotation : {"summary", "description", "runbook"}) {
        EXPECT_FALSE(Str(At(rule, {"annotations", annotation})).empty())
            << name << " has no " << annotation;
      }
    }
  }
}

// promtool runs deploy/prometheus/alerts_test.yml, and that file shows
// every alert firing on its condition and every alert silent on a healthy
// broker.
TEST(AlertRules, EachAlertFiresOnItsConditionInPromtoolUnitTests) {
  CommandResult test = RunTool(
      {kPromtool, "test", "rules", Repo("deploy/prometheus/alerts_test.yml")});
  EXPECT_EQ(test.exit_code, 0) << Output(test);
  EXPECT_TRUE(absl::StrContains(Output(test), "SUCCESS")) << Output(test);

  std::set<std::string> fired, silent;
  const Value tests = LoadYaml(Repo("deploy/prometheus/alerts_test.yml"));
  for (const Value& group : List(Field(tests, "tests"))) {
    for (const Value& expectation : List(Field(group, "alert_rule_test"))) {
      const std::string name = Str(Field(expectation, "alertname"));
      if (Field(expectation, "exp_alerts").list_value().values_size() > 0) {
        fired.insert(name);
      } else {
        silent.insert(name);
      }
    }
  }
  for (const auto& [name, unused] : AlertExpressions()) {
    EXPECT_TRUE(fired.count(name)) << name << " is never shown to fire";
    EXPECT_TRUE(silent.count(name)) << name << " is never shown to stay quiet";
  }
}

TEST(GrafanaDashboard, IsADashboardWithADataSourceVariable) {
  const Value dashboard = Dashboard();
  EXPECT_EQ(Str(Field(dashboard, "uid")), "referral-broker");
  EXPECT_GE(Int(Field(dashboard, "schemaVersion")), 36);
  bool datasource_variable = false;
  for (const Value& variable : List(At(dashboard, {"templating", "list"}))) {
    datasource_variable |= Str(Field(variable, "type")) == "datasource" &&
                           Str(Field(variable, "query")) == "prometheus";
  }
  EXPECT_TRUE(datasource_variable);
  for (const Value& panel : List(Field(dashboard, "panels"))) {
    if (Str(Field(panel, "type")) == "row") continue;
    EXPECT_EQ(Str(At(panel, {"datasource", "uid"})), "${datasource}")
        << Str(Field(panel, "title"));
  }
}

// Every dashboard query is valid PromQL: promtool checks them as recording
// rules (with the template variables filled in).
TEST(GrafanaDashboard, QueriesAreValidPromQl) {
  google::protobuf::Struct group;
  (*group.mutable_fields())["name"].set_string_value("dashboard");
  auto* list = (*group.mutable_fields())["rules"].mutable_list_value();
  int n = 0;
  for (const std::string& expression : DashboardExpressions()) {
    if (absl::StartsWith(expression, "label_values(")) continue;
    auto& rule = *list->add_values()->mutable_struct_value()->mutable_fields();
    rule["record"].set_string_value(absl::StrCat("dashboard:query_", ++n));
    rule["expr"].set_string_value(
        absl::StrReplaceAll(expression, {{"$queue", ".+"}, {"$job", ".+"}}));
  }
  ASSERT_GE(n, 15);
  Value rules;
  *(*rules.mutable_struct_value()->mutable_fields())["groups"]
       .mutable_list_value()
       ->add_values()
       ->mutable_struct_value() = group;
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(rules, &json).ok());
  TempDir dir;
  WriteFile(dir.Sub("dashboard-rules.yml"), json);  // JSON is YAML
  CommandResult check =
      RunTool({kPromtool, "check", "rules", dir.Sub("dashboard-rules.yml")});
  EXPECT_EQ(check.exit_code, 0) << Output(check);
}

TEST(Monitoring, DashboardAndAlertsUseOnlyMetricsTheBrokerExports) {
  std::vector<std::pair<std::string, std::string>> expressions;
  for (const auto& [name, expression] : AlertExpressions()) {
    expressions.emplace_back(absl::StrCat("alert ", name), expression);
  }
  for (const std::string& expression : DashboardExpressions()) {
    expressions.emplace_back("dashboard", expression);
  }
  ASSERT_GE(expressions.size(), 20u);
  std::set<std::string> used;
  for (const auto& [where, expression] : expressions) {
    for (const std::string& metric : MetricNamesIn(expression)) {
      EXPECT_TRUE(BrokerMetricNames().count(metric))
          << where << " uses " << metric << ", which the broker does not "
          << "export: " << expression;
      used.insert(metric);
    }
  }
  // The dashboard shows what the issue asks for.
  std::set<std::string> on_dashboard;
  std::string all_dashboard;
  for (const std::string& expression : DashboardExpressions()) {
    for (const std::string& metric : MetricNamesIn(expression)) {
      on_dashboard.insert(metric);
    }
    absl::StrAppend(&all_dashboard, expression, "\n");
  }
  for (const char* metric :
       {"referral_queue_ready_referrals", "referral_queue_claimed_referrals",
        "referral_queue_overdue_referrals",
        "referral_queue_oldest_ready_age_seconds",
        "referral_queue_dead_letter_referrals", "grpc_server_handling_seconds",
        "referral_intake_total", "referral_decisions_total"}) {
    EXPECT_TRUE(on_dashboard.count(metric)) << metric;
  }
  for (const char* text :
       {"histogram_quantile(0.5,", "histogram_quantile(0.99,",
        "SubmitReferral|ClaimReferrals|RecordDecision", "by (agency_type)",
        "by (decision)", "by (queue)"}) {
    EXPECT_TRUE(absl::StrContains(all_dashboard, text)) << text;
  }
}

}  // namespace
}  // namespace referral
