#include "encrypted_env.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/hex.h"
#include "rocksdb/env_encryption.h"
#include "rocksdb/file_system.h"

namespace referral::storage {
namespace {

constexpr size_t kAesBlockBytes = 16;
// A key file is 64 hex digits and a newline; anything much bigger is the
// wrong file, and is not read into memory.
constexpr off_t kMaxKeyFileBytes = 128;
constexpr size_t kSaltBytes = 32;
constexpr char kKeyCheckHeader[] = "referral-broker-keycheck v1";
// Domain separation: this HMAC is only ever a key check, never anything a
// later feature might also compute with the same key.
constexpr char kKeyCheckLabel[] = "referral-broker/KEYCHECK/v1";

std::string ErrnoText() { return std::strerror(errno); }

// Overwrites a string's bytes before it is freed; for anything that held
// key material.
void Wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

// Decodes `hex` (even length, any case) into `out`; false on a bad digit.
// The digits are checked first, so no partial key is left behind.
bool DecodeHex(std::string_view hex, std::string& out) {
  if (!std::all_of(hex.begin(), hex.end(), absl::ascii_isxdigit)) return false;
  std::optional<std::string> bytes = HexToBytes(hex);
  if (!bytes.has_value()) return false;
  out = *std::move(bytes);
  return true;
}

// Reads a whole small file; false (errno set) on failure.
bool ReadSmallFile(const std::string& path, off_t max_bytes, std::string& out,
                   bool& too_big) {
  too_big = false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return false;
  }
  if (!S_ISREG(st.st_mode) || st.st_size > max_bytes) {
    too_big = true;
    ::close(fd);
    return true;
  }
  out.assign(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  ::close(fd);
  return true;
}

// AES-256 on single 16-byte blocks (ECB of one block, no padding): the block
// function that RocksDB's CTR stream turns into a keystream. RocksDB calls
// it from many threads at once for every 16 bytes of I/O, so initialised
// OpenSSL contexts are kept in a small pool instead of being rebuilt per
// block (a key schedule each time) or shared (EVP contexts are not
// thread-safe). Must never throw: RocksDB is not exception-safe.
class Aes256BlockCipher : public rocksdb::BlockCipher {
 public:
  static const char* kClassName() { return "ReferralAes256"; }

  // nullptr when OpenSSL cannot provide AES-256-ECB.
  static std::shared_ptr<Aes256BlockCipher> Create(const std::string& key) {
    EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-ECB", nullptr);
    if (cipher == nullptr) return nullptr;
    return std::shared_ptr<Aes256BlockCipher>(
        new Aes256BlockCipher(cipher, key));
  }

  ~Aes256BlockCipher() override {
    for (EVP_CIPHER_CTX* ctx : encrypt_pool_) EVP_CIPHER_CTX_free(ctx);
    for (EVP_CIPHER_CTX* ctx : decrypt_pool_) EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher_);
    OPENSSL_cleanse(key_.data(), key_.size());
  }

  const char* Name() const override { return kClassName(); }
  size_t BlockSize() override { return kAesBlockBytes; }
  rocksdb::Status Encrypt(char* data) override { return Apply(data, true); }
  rocksdb::Status Decrypt(char* data) override { return Apply(data, false); }

 private:
  Aes256BlockCipher(EVP_CIPHER* cipher, const std::string& key)
      : cipher_(cipher) {
    std::memcpy(key_.data(), key.data(), key_.size());
  }

  rocksdb::Status Apply(char* data, bool encrypt) {
    EVP_CIPHER_CTX* ctx = Acquire(encrypt);
    if (ctx == nullptr) {
      return rocksdb::Status::IOError("AES-256 context setup failed");
    }
    unsigned char out[kAesBlockBytes];
    int out_len = 0;
    const bool ok =
        EVP_CipherUpdate(ctx, out, &out_len,
                         reinterpret_cast<const unsigned char*>(data),
                         static_cast<int>(kAesBlockBytes)) == 1 &&
        out_len == static_cast<int>(kAesBlockBytes);
    if (ok) std::memcpy(data, out, kAesBlockBytes);
    OPENSSL_cleanse(out, sizeof(out));
    // A context that failed is dropped, not reused.
    if (ok) {
      Release(ctx, encrypt);
    } else {
      EVP_CIPHER_CTX_free(ctx);
    }
    return ok ? rocksdb::Status::OK()
              : rocksdb::Status::IOError("AES-256 block operation failed");
  }

  // A context ready for whole blocks in one direction. ECB with padding off
  // keeps no state between full blocks, so a context can be reused as is.
  EVP_CIPHER_CTX* Acquire(bool encrypt) {
    {
      absl::MutexLock lock(&mu_);
      std::vector<EVP_CIPHER_CTX*>& pool =
          encrypt ? encrypt_pool_ : decrypt_pool_;
      if (!pool.empty()) {
        EVP_CIPHER_CTX* ctx = pool.back();
        pool.pop_back();
        return ctx;
      }
    }
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    if (ctx == nullptr) return nullptr;
    if (EVP_CipherInit_ex2(ctx, cipher_, key_.data(), nullptr, encrypt ? 1 : 0,
                           nullptr) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
      EVP_CIPHER_CTX_free(ctx);
      return nullptr;
    }
    return ctx;
  }

  void Release(EVP_CIPHER_CTX* ctx, bool encrypt) {
    absl::MutexLock lock(&mu_);
    (encrypt ? encrypt_pool_ : decrypt_pool_).push_back(ctx);
  }

  EVP_CIPHER* const cipher_;
  std::array<unsigned char, kEncryptionKeyBytes> key_;
  absl::Mutex mu_;
  std::vector<EVP_CIPHER_CTX*> encrypt_pool_ ABSL_GUARDED_BY(mu_);
  std::vector<EVP_CIPHER_CTX*> decrypt_pool_ ABSL_GUARDED_BY(mu_);
};

// RocksDB 7.8's CTR provider, with one change: each file's prefix (initial
// counter and nonce) comes from OpenSSL's CSPRNG. Upstream fills it from
// rocksdb::Random seeded with the current time in microseconds truncated to
// 31 bits, so two files (say a WAL and an SST created in the same
// microsecond, or 36 minutes apart) can get the same counter and nonce,
// i.e. the same keystream, which leaks the XOR of their plaintexts. With
// 128 random bits per file that does not happen. Reading is unchanged: the
// counter and nonce are read back from the prefix as upstream does.
class RandomPrefixCtrProvider : public rocksdb::EncryptionProvider {
 public:
  static const char* kClassName() { return "ReferralCTR"; }

  explicit RandomPrefixCtrProvider(
      std::shared_ptr<rocksdb::EncryptionProvider> ctr)
      : ctr_(std::move(ctr)) {}

  const char* Name() const override { return kClassName(); }

  size_t GetPrefixLength() const override { return ctr_->GetPrefixLength(); }

  rocksdb::Status CreateNewPrefix(const std::string& /*fname*/, char* prefix,
                                  size_t prefix_length) const override {
    // Upstream encrypts the bytes after the counter and nonce; they carry
    // no information, so random bytes are equivalent.
    if (prefix_length < 2 * kAesBlockBytes ||
        RAND_bytes(reinterpret_cast<unsigned char*>(prefix),
                   static_cast<int>(prefix_length)) != 1) {
      return rocksdb::Status::IOError("cannot create an encryption prefix");
    }
    return rocksdb::Status::OK();
  }

  rocksdb::Status AddCipher(const std::string& /*descriptor*/,
                            const char* /*cipher*/, size_t /*len*/,
                            bool /*for_write*/) override {
    return rocksdb::Status::NotSupported("the cipher is fixed at creation");
  }

  rocksdb::Status CreateCipherStream(
      const std::string& fname, const rocksdb::EnvOptions& options,
      rocksdb::Slice& prefix,
      std::unique_ptr<rocksdb::BlockAccessCipherStream>* result) override {
    // RocksDB asserts on a short prefix; refuse it here instead (a file that
    // was never encrypted, or was truncated).
    if (prefix.size() < GetPrefixLength()) {
      return rocksdb::Status::Corruption("file has no encryption prefix");
    }
    return ctr_->CreateCipherStream(fname, options, prefix, result);
  }

 private:
  std::shared_ptr<rocksdb::EncryptionProvider> ctr_;
};

// The encrypted Env as RocksDB builds it (NewCompositeEnv over the
// encrypted FileSystem) still writes its info log ("LOG") in plain text:
// Env::NewLogger reaches the base file system's own logger, which opens the
// file directly. The LOG records paths, options and statistics, and in
// places keys; rather than vet every line RocksDB may ever write, it goes
// through the encrypted file system like every other file.
class EncryptedInfoLogEnv : public rocksdb::EnvWrapper {
 public:
  static const char* kClassName() { return "ReferralEncryptedEnv"; }

  explicit EncryptedInfoLogEnv(std::unique_ptr<rocksdb::Env> encrypted)
      : rocksdb::EnvWrapper(std::move(encrypted)) {}

  const char* Name() const override { return kClassName(); }

  rocksdb::Status NewLogger(const std::string& fname,
                            std::shared_ptr<rocksdb::Logger>* result) override {
    // RocksDB's own file logger, writing through this Env's (encrypted)
    // file system.
    return rocksdb::NewEnvLogger(fname, this, result);
  }
};

absl::StatusOr<std::string> KeyCheckMac(const std::string& key,
                                        std::string_view salt) {
  std::string message = kKeyCheckLabel;
  message.append(salt);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()),
           message.size(), mac, &mac_len) == nullptr) {
    return absl::InternalError("HMAC-SHA256 failed");
  }
  std::string result(reinterpret_cast<char*>(mac), mac_len);
  OPENSSL_cleanse(mac, sizeof(mac));
  return result;
}

absl::Status KeyMismatch(const std::string& data_dir) {
  return absl::FailedPreconditionError(
      absl::StrCat("encryption key does not match this data directory (",
                   data_dir, "): check the key file given to the broker"));
}

// Verifies an existing KEYCHECK file's contents against `key`.
absl::Status VerifyKeyCheck(const std::string& data_dir,
                            const std::string& path, const std::string& text,
                            const std::string& key) {
  // Three lines: header, "salt <hex>", "hmac-sha256 <hex>".
  const std::string salt_tag = "salt ";
  const std::string mac_tag = "hmac-sha256 ";
  std::vector<std::string_view> lines;
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    lines.push_back(rest.substr(0, end));
    rest = end == std::string_view::npos ? "" : rest.substr(end + 1);
  }
  std::string salt;
  std::string stored_mac;
  if (lines.size() != 3 || lines[0] != kKeyCheckHeader ||
      !lines[1].starts_with(salt_tag) || !lines[2].starts_with(mac_tag) ||
      !DecodeHex(lines[1].substr(salt_tag.size()), salt) ||
      !DecodeHex(lines[2].substr(mac_tag.size()), stored_mac) ||
      salt.size() != kSaltBytes || stored_mac.size() != 32) {
    return absl::FailedPreconditionError(
        absl::StrCat(path,
                     " is not a valid key-check file; refusing to open the "
                     "store without a way to check its encryption key"));
  }
  absl::StatusOr<std::string> mac = KeyCheckMac(key, salt);
  if (!mac.ok()) return mac.status();
  if (CRYPTO_memcmp(mac->data(), stored_mac.data(), stored_mac.size()) != 0) {
    return KeyMismatch(data_dir);
  }
  return absl::OkStatus();
}

// True when the encrypted CURRENT file of the database in `data_dir`
// decrypts, under `key`, to what RocksDB writes there: "MANIFEST-<digits>\n".
// A wrong key (or a store that was never encrypted) fails this with
// overwhelming probability.
bool CurrentDecryptsWith(const std::string& data_dir, const std::string& key) {
  const std::string current = data_dir + "/CURRENT";
  struct stat st;
  // An unencrypted CURRENT is shorter than the encryption prefix.
  if (::stat(current.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size <= 4096 || st.st_size > 4096 + 256) {
    return false;
  }
  absl::StatusOr<std::unique_ptr<rocksdb::Env>> env =
      NewEncryptedEnvWithKey(key);
  if (!env.ok()) return false;
  std::unique_ptr<rocksdb::SequentialFile> file;
  if (!(*env)->NewSequentialFile(current, &file, rocksdb::EnvOptions()).ok()) {
    return false;
  }
  std::string scratch(256, '\0');
  rocksdb::Slice contents;
  if (!file->Read(scratch.size(), &contents, scratch.data()).ok()) {
    return false;
  }
  const std::string_view text(contents.data(), contents.size());
  constexpr std::string_view kPrefix = "MANIFEST-";
  if (!text.starts_with(kPrefix) || !text.ends_with('\n')) return false;
  const std::string_view number =
      text.substr(kPrefix.size(), text.size() - kPrefix.size() - 1);
  return !number.empty() &&
         std::all_of(number.begin(), number.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// Writes a new KEYCHECK for `key`. Returns OK also when another process
// created one first and it matches.
absl::Status CreateKeyCheck(const std::string& data_dir,
                            const std::string& path, const std::string& key) {
  std::string salt(kSaltBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()),
                 static_cast<int>(salt.size())) != 1) {
    return absl::InternalError("cannot generate a random salt");
  }
  absl::StatusOr<std::string> mac = KeyCheckMac(key, salt);
  if (!mac.ok()) return mac.status();
  const std::string contents =
      absl::StrCat(kKeyCheckHeader, "\nsalt ", BytesToHex(salt),
                   "\nhmac-sha256 ", BytesToHex(*mac), "\n");

  std::string suffix(8, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(suffix.data()),
                 static_cast<int>(suffix.size())) != 1) {
    return absl::InternalError("cannot generate a random file name");
  }
  const std::string tmp = absl::StrCat(path, ".tmp-", BytesToHex(suffix));
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(tmp, ": cannot create: ", ErrnoText()));
  }
  size_t done = 0;
  bool ok = true;
  while (done < contents.size()) {
    const ssize_t n =
        ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const std::string write_error = ok ? "" : ErrnoText();
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return absl::FailedPreconditionError(
        absl::StrCat(tmp, ": cannot write: ", write_error));
  }
  // link(2), unlike rename(2), never replaces an existing KEYCHECK: if
  // another process got there first, theirs stands and is verified.
  const int linked = ::link(tmp.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (linked != 0) {
    if (link_errno != EEXIST) {
      errno = link_errno;
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": cannot create: ", ErrnoText()));
    }
    std::string existing;
    bool too_big = false;
    if (!ReadSmallFile(path, 1024, existing, too_big) || too_big) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": cannot read key-check file"));
    }
    return VerifyKeyCheck(data_dir, path, existing, key);
  }
  // Make the new name durable before RocksDB writes anything under the key.
  const int dir_fd = ::open(data_dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ReadKeyFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open encryption key file: ", ErrnoText()));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": encryption key file is not a regular file"));
  }
  // Like ssh with private keys: a key others can read is not secret, and
  // one others can write can be swapped.
  if ((st.st_mode & (S_IRWXO | S_IWGRP)) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        path,
        ": encryption key file must not be accessible to other users "
        "(chmod 600)"));
  }
  std::string text;
  bool too_big = false;
  if (!ReadSmallFile(path, kMaxKeyFileBytes, text, too_big)) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot read encryption key file: ", ErrnoText()));
  }
  const absl::Status not_a_key = absl::InvalidArgumentError(absl::StrCat(
      path,
      ": encryption key file must hold 64 hexadecimal characters (32 bytes), "
      "as written by deploy/make-encryption-key.sh"));
  if (too_big) return not_a_key;
  std::string_view hex = text;
  if (hex.ends_with('\n')) hex.remove_suffix(1);
  if (hex.ends_with('\r')) hex.remove_suffix(1);
  std::string key;
  const bool decoded =
      hex.size() == 2 * kEncryptionKeyBytes && DecodeHex(hex, key);
  Wipe(text);
  if (!decoded) return not_a_key;
  if (std::all_of(key.begin(), key.end(), [](char c) { return c == 0; })) {
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ": encryption key is all zeros; generate a random one with "
        "deploy/make-encryption-key.sh"));
  }
  return key;
}

absl::Status CheckKeyFileOutsideDataDir(const std::string& key_file,
                                        const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::path key = fs::weakly_canonical(fs::absolute(key_file), error);
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_file, ": cannot resolve path: ", error.message()));
  }
  fs::path dir = fs::weakly_canonical(fs::absolute(data_dir), error);
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat(data_dir, ": cannot resolve path: ", error.message()));
  }
  if (!dir.has_filename()) dir = dir.parent_path();  // "/data/" -> "/data"
  // Whole components are compared, so /data2/key is not inside /data; the
  // key file being the directory itself counts as inside ("." ).
  const fs::path relative = key.lexically_relative(dir);
  if (!relative.empty() && *relative.begin() != "..") {
    return absl::FailedPreconditionError(
        absl::StrCat(key_file,
                     ": the encryption key file must be kept outside the data "
                     "directory ",
                     data_dir));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<rocksdb::Env>> NewEncryptedEnvWithKey(
    const std::string& key, std::shared_ptr<rocksdb::FileSystem> base) {
  if (key.size() != kEncryptionKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("encryption key must be ", kEncryptionKeyBytes, " bytes"));
  }
  std::shared_ptr<Aes256BlockCipher> cipher = Aes256BlockCipher::Create(key);
  if (cipher == nullptr) {
    return absl::InternalError("OpenSSL does not provide AES-256-ECB");
  }
  // Fail now rather than on the first write if the cipher does not work.
  char probe[kAesBlockBytes] = {};
  if (!cipher->Encrypt(probe).ok()) {
    return absl::InternalError("AES-256 encryption does not work");
  }
  auto provider = std::make_shared<RandomPrefixCtrProvider>(
      rocksdb::EncryptionProvider::NewCTRProvider(cipher));
  std::shared_ptr<rocksdb::FileSystem> fs = rocksdb::NewEncryptedFS(
      base != nullptr ? std::move(base) : rocksdb::FileSystem::Default(),
      provider);
  if (fs == nullptr) {
    return absl::InternalError("cannot create RocksDB's encrypted file system");
  }
  return std::unique_ptr<rocksdb::Env>(
      new EncryptedInfoLogEnv(rocksdb::NewCompositeEnv(fs)));
}

absl::StatusOr<std::unique_ptr<rocksdb::Env>> NewEncryptedEnv(
    const std::string& key_file) {
  absl::StatusOr<std::string> key = ReadKeyFile(key_file);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::unique_ptr<rocksdb::Env>> env =
      NewEncryptedEnvWithKey(*key);
  Wipe(*key);
  return env;
}

absl::Status CheckOrCreateKeyCheck(const std::string& data_dir,
                                   const std::string& key) {
  if (key.size() != kEncryptionKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("encryption key must be ", kEncryptionKeyBytes, " bytes"));
  }
  struct stat st;
  if (::stat(data_dir.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return absl::FailedPreconditionError(
          absl::StrCat(data_dir, ": ", ErrnoText()));
    }
    std::error_code error;
    std::filesystem::create_directories(data_dir, error);
    if (error) {
      return absl::FailedPreconditionError(
          absl::StrCat(data_dir, ": cannot create: ", error.message()));
    }
    // Only the broker's user needs to list the store's files.
    ::chmod(data_dir.c_str(), 0700);
  } else if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(data_dir, ": not a directory"));
  }

  const std::string path = absl::StrCat(data_dir, "/", kKeyCheckFileName);
  std::string existing;
  bool too_big = false;
  if (ReadSmallFile(path, 1024, existing, too_big)) {
    if (too_big) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is not a valid key-check file"));
    }
    return VerifyKeyCheck(data_dir, path, existing, key);
  }
  if (errno != ENOENT) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": cannot read: ", ErrnoText()));
  }

  // No KEYCHECK. A database already here must prove the key first.
  const std::string current = data_dir + "/CURRENT";
  if (::access(current.c_str(), F_OK) == 0 &&
      !CurrentDecryptsWith(data_dir, key)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "encryption key does not match this data directory (", data_dir,
        "), or its database was not written encrypted; it has no ",
        kKeyCheckFileName,
        " file, and its files do not decrypt with this key"));
  }
  return CreateKeyCheck(data_dir, path, key);
}

}  // namespace referral::storage
