// Broker::CheckOptions: everything about the broker's settings that can be
// known before the store is opened or a port is bound, so that
// `referral_broker --check-config` catches a mistake when the change is
// deployed rather than when the broker next restarts. Ranges are declared on
// the settings (broker_settings.proto) and checked by reflection; what
// cannot be declared (addresses, files, keys, certificates, rules) is
// checked here in code. Problems name the setting and never quote a key.
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "base/json_log.h"
#include "google/protobuf/descriptor.h"
#include "rules/routing_table.h"
#include "rules/working_calendar.h"
#include "security/principals.h"
#include "server/broker.h"
#include "settings/broker_settings.h"
#include "settings/declared_settings.h"
#include "settings/text_config.h"

namespace referral::server {
namespace {

// Debian's Abseil has its own string_view, distinct from std's.
absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

// As storage/src/encrypted_env.cc reads it: 64 hex digits and a newline.
constexpr size_t kKeyHexDigits = 64;
constexpr off_t kMaxKeyFileBytes = 128;

class Problems {
 public:
  explicit Problems(absl::FunctionRef<void(SettingProblem)> report)
      : report_(report) {}

  void Value(std::string_view setting, std::string problem) {
    report_({std::string(setting), std::move(problem), false});
  }
  void InFile(std::string_view setting, std::string problem) {
    report_({std::string(setting), std::move(problem), true});
  }
  // A file loader's error: NOT_FOUND (cannot read the path) is about the
  // value; anything else is located in the file's own text.
  void LoadError(std::string_view setting, const absl::Status& status) {
    report_({std::string(setting), std::string(status.message()),
             status.code() != absl::StatusCode::kNotFound});
  }

 private:
  absl::FunctionRef<void(SettingProblem)> report_;
};

// --- Addresses ------------------------------------------------------------

struct HostPort {
  std::string host;
  int port = 0;
};

// "host:port" with a name, an IPv4 address or a bracketed IPv6 address, and
// a port from 0 to 65535; nullopt otherwise.
std::optional<HostPort> ParseHostPort(std::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  const std::string_view host = address.substr(0, colon);
  const std::string_view port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(),
                   [](unsigned char c) { return std::isdigit(c); })) {
    return std::nullopt;
  }
  int number = 0;
  if (!absl::SimpleAtoi(Absl(port), &number) || number > 65535) {
    return std::nullopt;
  }
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return std::nullopt;
  } else {
    // An unbracketed IPv6 address ("::1:50051") is ambiguous.
    for (const unsigned char c : host) {
      if (!std::isalnum(c) && c != '.' && c != '-' && c != '_') {
        return std::nullopt;
      }
    }
  }
  return HostPort{std::string(host), number};
}

bool IsWildcardHost(std::string_view host) {
  return host == "0.0.0.0" || host == "[::]" || host == "[::0]";
}

// Returns the parsed address, reporting a malformed one. `required`: empty
// is a problem too (listen); otherwise empty means the endpoint is off.
std::optional<HostPort> CheckAddress(Problems& problems,
                                     std::string_view setting,
                                     const std::string& address,
                                     bool required) {
  if (address.empty()) {
    if (required) problems.Value(setting, "must be host:port (got \"\")");
    return std::nullopt;
  }
  std::optional<HostPort> parsed = ParseHostPort(address);
  if (!parsed.has_value()) {
    problems.Value(setting,
                   absl::StrCat("must be host:port with a port from 0 to "
                                "65535, e.g. 127.0.0.1:50051 or [::1]:50051 "
                                "(got \"",
                                address, "\")"));
  }
  return parsed;
}

// Two endpoints on one fixed port would make the second fail to bind.
void CheckDistinctPorts(Problems& problems, std::string_view setting,
                        const std::optional<HostPort>& address,
                        std::string_view other_setting,
                        const std::optional<HostPort>& other) {
  if (!address.has_value() || !other.has_value()) return;
  if (address->port == 0 || address->port != other->port) return;
  if (address->host == other->host || IsWildcardHost(address->host) ||
      IsWildcardHost(other->host)) {
    problems.Value(setting,
                   absl::StrCat("port ", address->port, " is already used by ",
                                Absl(other_setting)));
  }
}

// --- Files ----------------------------------------------------------------

// Reads a file a setting names; reports and returns nullopt when it cannot.
std::optional<std::string> ReadNamedFile(Problems& problems,
                                         std::string_view setting,
                                         const std::string& path) {
  absl::StatusOr<std::string> text = ReadConfigFile(path);
  if (!text.ok()) {
    problems.Value(setting, std::string(text.status().message()));
    return std::nullopt;
  }
  return *std::move(text);
}

// Overwrites key material before it is freed.
void Wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* x509) const { X509_free(x509); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using UniqueX509 = std::unique_ptr<X509, X509Free>;

// Every PEM certificate in `pem`, in order.
std::vector<UniqueX509> ReadCertificates(const std::string& pem) {
  std::vector<UniqueX509> certificates;
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return certificates;
  while (X509* certificate =
             PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certificates.emplace_back(certificate);
  }
  // The loop ends on "no more PEM blocks", which OpenSSL queues as an error.
  ERR_clear_error();
  return certificates;
}

// An encrypted key would need a passphrase at every start; refuse it here
// rather than block on a prompt.
int NoPassphrase(char*, int, int, void*) { return 0; }

void CheckTls(Problems& problems, const BrokerOptions& options) {
  std::vector<UniqueX509> chain;
  if (std::optional<std::string> pem =
          ReadNamedFile(problems, "tls_certificate_file",
                        options.settings.tls_certificate_file())) {
    chain = ReadCertificates(*pem);
    if (chain.empty()) {
      problems.InFile("tls_certificate_file",
                      absl::StrCat(options.settings.tls_certificate_file(),
                                   ": no PEM certificate found"));
    } else {
      const time_t now = absl::ToTimeT(options.clock());
      time_t at = now;
      if (X509_cmp_time(X509_get0_notAfter(chain.front().get()), &at) < 0) {
        problems.InFile("tls_certificate_file",
                        absl::StrCat(options.settings.tls_certificate_file(),
                                     ": the certificate has expired"));
      } else if (X509_cmp_time(X509_get0_notBefore(chain.front().get()), &at) >
                 0) {
        problems.InFile("tls_certificate_file",
                        absl::StrCat(options.settings.tls_certificate_file(),
                                     ": the certificate is not valid yet"));
      }
    }
  }
  if (std::optional<std::string> pem =
          ReadNamedFile(problems, "tls_private_key_file",
                        options.settings.tls_private_key_file())) {
    std::unique_ptr<BIO, BioFree> bio(
        BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
    std::unique_ptr<EVP_PKEY, PkeyFree> key(
        bio == nullptr ? nullptr
                       : PEM_read_bio_PrivateKey(bio.get(), nullptr,
                                                 NoPassphrase, nullptr));
    ERR_clear_error();
    Wipe(*pem);
    if (key == nullptr) {
      problems.InFile(
          "tls_private_key_file",
          absl::StrCat(options.settings.tls_private_key_file(),
                       ": not a PEM private key (or one protected by a "
                       "passphrase, which the broker cannot enter)"));
    } else if (!chain.empty() &&
               X509_check_private_key(chain.front().get(), key.get()) != 1) {
      ERR_clear_error();
      problems.Value("tls_private_key_file",
                     absl::StrCat(options.settings.tls_private_key_file(),
                                  ": does not match the certificate in "
                                  "tls_certificate_file"));
    }
  }
  if (std::optional<std::string> pem =
          ReadNamedFile(problems, "tls_client_ca_file",
                        options.settings.tls_client_ca_file())) {
    if (ReadCertificates(*pem).empty()) {
      problems.InFile("tls_client_ca_file",
                      absl::StrCat(options.settings.tls_client_ca_file(),
                                   ": no PEM certificate found"));
    }
  }
}

// Who may call, and how: mutual TLS with principals, or (explicitly, on
// loopback only) development mode.
void CheckTransport(Problems& problems, const BrokerOptions& options) {
  const bool any_tls = !options.settings.tls_certificate_file().empty() ||
                       !options.settings.tls_private_key_file().empty() ||
                       !options.settings.tls_client_ca_file().empty();
  if (options.settings.insecure_development()) {
    if (any_tls) {
      problems.Value("insecure_development",
                     "cannot be combined with TLS (a tls_* file is set)");
    }
    if (!IsLoopbackListenAddress(options.settings.listen())) {
      problems.Value("insecure_development",
                     absl::StrCat("only allowed when listen is a loopback "
                                  "address (got \"",
                                  options.settings.listen(), "\")"));
    }
    return;
  }
  if (!any_tls) {
    problems.Value("tls_certificate_file",
                   "required (with tls_private_key_file, tls_client_ca_file "
                   "and principals_file): refusing to serve without TLS "
                   "unless insecure_development is set on a loopback listen "
                   "address");
    return;
  }
  const std::pair<const char*, const std::string*> files[] = {
      {"tls_certificate_file", &options.settings.tls_certificate_file()},
      {"tls_private_key_file", &options.settings.tls_private_key_file()},
      {"tls_client_ca_file", &options.settings.tls_client_ca_file()},
      {"principals_file", &options.settings.principals_file()},
  };
  bool all_given = true;
  for (const auto& [setting, path] : files) {
    if (path->empty()) {
      problems.Value(setting,
                     "required with TLS (the tls_* files and "
                     "principals_file are given together)");
      all_given = false;
    }
  }
  if (all_given) CheckTls(problems, options);
}

// The routing and calendar files, and the principals file checked against
// the routing file's queues (a triage principal limited to a queue that
// does not exist would silently see nothing).
void CheckRulesAndPrincipals(Problems& problems,
                             const config::v1::BrokerSettings& s) {
  absl::StatusOr<std::unique_ptr<RoutingTable>> routing =
      RoutingTable::LoadFile(
          RulesFileOrDefault(s.routing_file(), "routing.txtpb"));
  if (!routing.ok()) problems.LoadError("routing_file", routing.status());
  absl::StatusOr<WorkingCalendar> calendar = WorkingCalendar::LoadFile(
      RulesFileOrDefault(s.calendar_file(), "calendar.txtpb"));
  if (!calendar.ok()) problems.LoadError("calendar_file", calendar.status());
  if (s.principals_file().empty()) return;
  absl::StatusOr<std::unique_ptr<PrincipalDirectory>> principals =
      PrincipalDirectory::LoadFile(s.principals_file());
  if (!principals.ok()) {
    problems.LoadError("principals_file", principals.status());
    return;
  }
  if (!routing.ok()) return;
  const absl::Status queues =
      (*principals)->CheckQueues([&](std::string_view queue) {
        return (*routing)->HasQueue(queue);
      });
  if (!queues.ok()) {
    problems.InFile("principals_file",
                    absl::StrCat(s.principals_file(),
                                 ": allowed_queues not in routing_file: ",
                                 queues.message()));
  }
}

// --- Directories and the encryption key -----------------------------------

// The absolute, normalised form of `path` (symlinks resolved as far as the
// path exists), for comparing directories; nothing is created.
std::filesystem::path Canonical(const std::string& path) {
  std::error_code error;
  std::filesystem::path canonical =
      std::filesystem::weakly_canonical(std::filesystem::absolute(path), error);
  if (error) canonical = std::filesystem::absolute(path).lexically_normal();
  if (!canonical.has_filename()) canonical = canonical.parent_path();
  return canonical;
}

// True when `path` is `dir` or inside it (whole components compared).
bool IsInside(const std::string& path, const std::string& dir) {
  const std::filesystem::path relative =
      Canonical(path).lexically_relative(Canonical(dir));
  return !relative.empty() && *relative.begin() != "..";
}

// An existing path must be a directory; a missing one is created at start.
void CheckDirectory(Problems& problems, std::string_view setting,
                    const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
    problems.Value(setting, absl::StrCat(path, ": not a directory"));
  }
}

void CheckDirectories(Problems& problems, const config::v1::BrokerSettings& s) {
  if (s.data_dir().empty()) {
    problems.Value("data_dir", "must not be empty");
    return;
  }
  CheckDirectory(problems, "data_dir", s.data_dir());
  if (s.backup_dir().empty()) return;
  CheckDirectory(problems, "backup_dir", s.backup_dir());
  // A backup inside the data directory is lost with it, and RocksDB would
  // find the backup's files among its own.
  if (IsInside(s.backup_dir(), s.data_dir())) {
    problems.Value("backup_dir",
                   absl::StrCat(s.backup_dir(), ": must be outside data_dir (",
                                s.data_dir(), ")"));
  } else if (IsInside(s.data_dir(), s.backup_dir())) {
    problems.Value("backup_dir",
                   absl::StrCat(s.backup_dir(), ": must not contain data_dir (",
                                s.data_dir(), ")"));
  }
}

bool IsHexDigit(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

// The storage layer's rules for a key file (storage/src/encrypted_env.cc
// ReadKeyFile and CheckKeyFileOutsideDataDir), checked without opening the
// store. The storage library exposes no public check yet, so this repeats
// its rules; the contents are never put in a message.
void CheckEncryptionKey(Problems& problems,
                        const config::v1::BrokerSettings& s) {
  const std::string& path = s.encryption_key_file();
  if (path.empty()) return;
  constexpr char kSetting[] = "encryption_key_file";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    problems.Value(kSetting, absl::StrCat(path, ": cannot open file"));
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    problems.Value(kSetting, absl::StrCat(path, ": not a regular file"));
    return;
  }
  if ((st.st_mode & (S_IRWXO | S_IWGRP)) != 0) {
    problems.Value(kSetting,
                   absl::StrCat(path,
                                ": must not be accessible to other users "
                                "(chmod 600)"));
  }
  if (IsInside(path, s.data_dir())) {
    problems.Value(kSetting,
                   absl::StrCat(path, ": must be kept outside data_dir (",
                                s.data_dir(), ")"));
  }
  const std::string not_a_key = absl::StrCat(
      path,
      ": must hold 64 hexadecimal characters (32 bytes), as written by "
      "deploy/make-encryption-key.sh");
  if (st.st_size > kMaxKeyFileBytes) {
    problems.InFile(kSetting, not_a_key);
    return;
  }
  // Read here rather than with ReadConfigFile, so that no copy of the key
  // is left behind in a buffer that is not wiped.
  std::string text(kMaxKeyFileBytes + 1, '\0');
  std::ifstream in(path, std::ios::binary);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad() || (!in && !in.eof())) {
    Wipe(text);
    problems.Value(kSetting, absl::StrCat(path, ": cannot read file"));
    return;
  }
  text.resize(static_cast<size_t>(in.gcount()));
  std::string_view hex = text;
  if (hex.ends_with('\n')) hex.remove_suffix(1);
  if (hex.ends_with('\r')) hex.remove_suffix(1);
  const bool well_formed = hex.size() == kKeyHexDigits &&
                           std::all_of(hex.begin(), hex.end(), IsHexDigit);
  const bool all_zero =
      well_formed &&
      std::all_of(hex.begin(), hex.end(), [](char c) { return c == '0'; });
  Wipe(text);
  if (!well_formed) {
    problems.InFile(kSetting, not_a_key);
  } else if (all_zero) {
    problems.InFile(kSetting,
                    absl::StrCat(path,
                                 ": the key is all zeros; generate a random "
                                 "one with deploy/make-encryption-key.sh"));
  }
}

// --- Numbers, the log level and port files --------------------------------

// The declared bounds of every setting (broker_settings.proto), then the
// one that relates two settings.
void CheckNumbers(Problems& problems, const config::v1::BrokerSettings& s) {
  const google::protobuf::Descriptor* type = s.GetDescriptor();
  for (int i = 0; i < type->field_count(); ++i) {
    if (std::optional<std::string> problem = RangeProblem(s, type->field(i))) {
      problems.Value(type->field(i)->name(), *std::move(problem));
    }
  }
  if (s.lease_seconds() > 0 && s.max_lease_seconds() > 0 &&
      s.max_lease_seconds() < s.lease_seconds()) {
    problems.Value(
        "max_lease_seconds",
        absl::StrCat("must be at least lease_seconds (", s.lease_seconds(),
                     ") (got ", s.max_lease_seconds(), ")"));
  }
}

void CheckLogLevel(Problems& problems, const std::string& level) {
  LogLevel parsed;
  if (!ParseLogLevel(level, &parsed)) {
    problems.Value("log_level",
                   absl::StrCat("must be debug, info, warning or error (got \"",
                                level, "\")"));
  }
}

// The directory a port file is written in must exist: the broker writes it
// only after it has opened the store and started serving, which is too late
// to find out.
void CheckPortFileDirectory(Problems& problems, std::string_view setting,
                            const std::string& path) {
  if (path.empty()) return;
  const std::filesystem::path parent =
      std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    problems.Value(setting, absl::StrCat("directory ", dir, " does not exist"));
  }
}

}  // namespace

void CheckBrokerOptions(const BrokerOptions& options,
                        absl::FunctionRef<void(SettingProblem)> report) {
  Problems problems(report);
  const config::v1::BrokerSettings& s = options.settings;
  const std::optional<HostPort> listen =
      CheckAddress(problems, "listen", s.listen(), true);
  const std::optional<HostPort> metrics =
      CheckAddress(problems, "metrics_listen", s.metrics_listen(), false);
  const std::optional<HostPort> health =
      CheckAddress(problems, "health_listen", s.health_listen(), false);
  CheckDistinctPorts(problems, "metrics_listen", metrics, "listen", listen);
  CheckDistinctPorts(problems, "health_listen", health, "listen", listen);
  CheckDistinctPorts(problems, "health_listen", health, "metrics_listen",
                     metrics);
  CheckNumbers(problems, s);
  CheckDirectories(problems, s);
  CheckEncryptionKey(problems, s);
  CheckTransport(problems, options);
  CheckRulesAndPrincipals(problems, s);
  CheckLogLevel(problems, s.log_level());
  CheckPortFileDirectory(problems, "port_file", s.port_file());
  CheckPortFileDirectory(problems, "metrics_port_file", s.metrics_port_file());
  CheckPortFileDirectory(problems, "health_port_file", s.health_port_file());
}

absl::Status Broker::CheckOptions(const BrokerOptions& options) {
  std::vector<std::string> errors;
  CheckBrokerOptions(WithDefaultSettings(options), [&](SettingProblem problem) {
    errors.push_back(absl::StrCat(problem.setting, ": ", problem.problem));
  });
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
}

}  // namespace referral::server
