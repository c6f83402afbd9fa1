#include "referral_json.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"
#include "json_schema_checker.h"

namespace referral::clients {
namespace {

using google::protobuf::Descriptor;

// protobuf's messages quote the input. Keep only a field path of the form
// "(a.b[0].c)" when there is one.
absl::Status SanitizedProtobufError(absl::string_view message,
                                    const Descriptor* root) {
  std::string path;
  if (absl::StartsWith(message, "(")) {
    const size_t close = message.find(')');
    if (close != absl::string_view::npos) {
      const absl::string_view candidate = message.substr(1, close - 1);
      const bool safe =
          !candidate.empty() && candidate.size() <= 200 &&
          std::all_of(candidate.begin(), candidate.end(), [](char c) {
            return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                   c == '_' || c == '.' || c == '[' || c == ']';
          });
      if (safe) path = std::string(candidate);
    }
  }
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the JSON could not be read as a ", root->full_name(),
        " (protobuf's details are withheld because they quote the content)"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": value not accepted for this field"));
}

}  // namespace

absl::Status ParseJsonMessage(absl::string_view json,
                              google::protobuf::Message* message) {
  message->Clear();
  if (json.size() > kMaxJsonBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the input is larger than ", kMaxJsonBytes / 1024 / 1024, " MiB"));
  }
  // Editors on Windows like to start UTF-8 files with a byte-order mark.
  if (absl::StartsWith(json, "\xEF\xBB\xBF")) json.remove_prefix(3);
  const Descriptor* root = message->GetDescriptor();
  absl::Status checked = CheckJsonAgainstSchema(json, *root, kMaxJsonDepth);
  if (!checked.ok()) return checked;

  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message,
      options);
  if (!status.ok()) {
    message->Clear();
    return SanitizedProtobufError(
        absl::string_view(status.message().data(), status.message().size()),
        root);
  }
  return absl::OkStatus();
}
absl::StatusOr<referral::v1::Referral> ParseReferralJson(
    absl::string_view json) {
  referral::v1::Referral referral;
  absl::Status status = ParseJsonMessage(json, &referral);
  if (!status.ok()) return status;
  return referral;
}

absl::StatusOr<std::string> ReadFileOrStdin(const std::string& path) {
  const bool from_stdin = path == "-";
  const std::string label = from_stdin ? "<stdin>" : path;
  int fd = STDIN_FILENO;
  if (!from_stdin) {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      return absl::Status(
          absl::ErrnoToStatusCode(error),
          absl::StrCat("cannot open ", label, ": ", std::strerror(error)));
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(label, " is a directory, not a file"));
    }
  }
  std::string content;
  char buffer[64 * 1024];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      if (!from_stdin) close(fd);
      return absl::Status(
          absl::ErrnoToStatusCode(error),
          absl::StrCat("cannot read ", label, ": ", std::strerror(error)));
    }
    content.append(buffer, static_cast<size_t>(n));
    if (content.size() > kMaxJsonBytes) {
      if (!from_stdin) close(fd);
      return absl::InvalidArgumentError(absl::StrCat(
          label, " is larger than ", kMaxJsonBytes / 1024 / 1024, " MiB"));
    }
  }
  if (!from_stdin) close(fd);
  return content;
}

absl::StatusOr<referral::v1::Referral> LoadReferralJson(
    const std::string& path) {
  absl::StatusOr<std::string> content = ReadFileOrStdin(path);
  if (!content.ok()) return content.status();
  absl::StatusOr<referral::v1::Referral> referral = ParseReferralJson(*content);
  if (!referral.ok()) {
    return absl::Status(referral.status().code(),
                        absl::StrCat(path == "-" ? "<stdin>" : path, ": ",
                                     referral.status().message()));
  }
  return referral;
}

}  // namespace referral::clients
