#include "record_util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/json_log.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "key_codec.h"

namespace referral::storage {

using ::referral::storage::v1::StoredReferral;

absl::StatusOr<std::string> Fingerprint(
    const ::referral::v1::Referral& referral) {
  std::string bytes;
  {
    ::google::protobuf::io::StringOutputStream stream(&bytes);
    ::google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    referral.SerializeToCodedStream(&coded);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(),
                 nullptr) != 1) {
    return absl::UnavailableError("could not fingerprint the referral");
  }
  return std::string(reinterpret_cast<const char*>(digest), length);
}

absl::StatusOr<std::string> NewLeaseToken() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::UnavailableError("could not generate a lease token");
  }
  return keys::ToHex(
      std::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

bool LeaseTokensEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || a.empty()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void AddHistory(StoredReferral& record, ::referral::v1::Stage stage,
                absl::Time at, std::string_view actor, std::string_view queue,
                std::string_view detail, int32_t delivery_attempt) {
  ::referral::v1::AcknowledgementEvent* event = record.add_history();
  event->set_stage(stage);
  *event->mutable_at() = ToTimestamp(at);
  event->set_actor(std::string(actor));
  event->set_queue(std::string(queue));
  event->set_detail(std::string(detail));
  event->set_delivery_attempt(delivery_attempt);
}

absl::Status FromRocksStatus(const rocksdb::Status& status,
                             std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  // RocksDB messages name files and codes, never record content.
  const std::string message =
      absl::StrCat(std::string(what), " failed: ", status.ToString());
  if (status.IsNoSpace() ||
      (status.IsIOError() &&
       absl::StrContains(status.ToString(), "No space"))) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::UnavailableError(message);
}

void LogWarning(std::string_view message) {
  LogEvent(LogLevel::kWarning, "storage_warning",
           {{"message", std::string(message)}});
}

}  // namespace referral::storage
