#include "audit_chain.h"

#include <openssl/evp.h>

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "key_codec.h"

namespace referral::storage::audit {

std::string AuditKey(uint64_t seq) { return keys::EncodeUint64(seq); }

std::optional<uint64_t> DecodeAuditKey(std::string_view key) {
  if (key.size() != 8) return std::nullopt;
  return keys::ReadUint64(key);
}

absl::StatusOr<std::string> ComputeHash(
    const ::referral::storage::v1::AuditRecord& record) {
  ::referral::storage::v1::AuditRecord unhashed = record;
  unhashed.clear_hash();
  // Deterministic serialization, so the same record always hashes the same
  // (protobuf's default makes no promise about map order and the like).
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!unhashed.SerializeToCodedStream(&coded)) {
      return absl::InternalError("audit record: cannot serialize");
    }
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return absl::InternalError("audit hash: no context");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const bool ok = EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, record.previous_hash().data(),
                                   record.previous_hash().size()) == 1 &&
                  EVP_DigestUpdate(ctx, bytes.data(), bytes.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, digest, &length) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return absl::InternalError("audit hash: SHA-256 failed");
  return std::string(reinterpret_cast<const char*>(digest), length);
}

}  // namespace referral::storage::audit
