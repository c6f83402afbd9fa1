// Encryption at rest for the referral store: a RocksDB Env that encrypts
// every file it writes (SSTs, WAL, MANIFEST, CURRENT, OPTIONS, LOG) with
// AES-256 in CTR mode, keyed from a key file kept outside the data directory,
// plus a key check that makes opening with the wrong key fail clearly.
//
// Every file means every file: RocksDB's info log ("LOG") included, which
// its stock encrypted Env leaves in plain text.
//
// Files are RocksDB's encrypted-env format: a 4096-byte prefix per file
// holding a random initial counter and nonce, then the CTR-encrypted
// contents. CTR gives confidentiality, not integrity; RocksDB's own block
// checksums catch accidental corruption, not deliberate tampering.
//
// Opening a store (the order matters):
//   1. ReadKeyFile(key_file); CheckKeyFileOutsideDataDir(key_file, dir)
//   2. CheckOrCreateKeyCheck(dir, key), before anything touches the
//      directory: RocksDB's Open writes a new info log and renames the old
//      one before it reads a single encrypted byte, and a wrong key only
//      shows up as garbage, so it must be caught first.
//   3. NewEncryptedEnvWithKey(key); options.env = env.get(); DB::Open. The
//      Env must outlive the DB. allow_mmap_reads/writes must stay false
//      (the encrypted env refuses them).
#ifndef REFERRAL_STORAGE_ENCRYPTED_ENV_H_
#define REFERRAL_STORAGE_ENCRYPTED_ENV_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace referral::storage {

// AES-256: the key is 32 bytes, written in the key file as 64 hex digits.
inline constexpr size_t kEncryptionKeyBytes = 32;
// The key-check file CheckOrCreateKeyCheck keeps in the data directory.
// Backups of the directory should carry it along (it is not secret).
inline constexpr char kKeyCheckFileName[] = "KEYCHECK";

// Reads an encryption key file: exactly 64 hexadecimal characters, then
// optionally a newline (as deploy/make-encryption-key.sh writes it). Returns
// the 32 raw key bytes. Refuses a file other users may access (it must be
// mode 0600 or 0640) and an all-zero key. Errors name the path, never the
// contents: NOT_FOUND when it cannot be opened, FAILED_PRECONDITION for
// permissions, INVALID_ARGUMENT for anything that is not a key.
absl::StatusOr<std::string> ReadKeyFile(const std::string& path);

// FAILED_PRECONDITION when `key_file` is inside `data_dir` (after resolving
// symlinks and ".."): a key stored with the data it protects protects
// nothing, and would travel with every copy and backup of the directory.
absl::Status CheckKeyFileOutsideDataDir(const std::string& key_file,
                                        const std::string& data_dir);

// An Env whose files are encrypted with `key` (32 raw bytes, as from
// ReadKeyFile) and written through `base` (null: the local file system).
// INVALID_ARGUMENT for a key of the wrong size.
absl::StatusOr<std::unique_ptr<rocksdb::Env>> NewEncryptedEnvWithKey(
    const std::string& key,
    std::shared_ptr<rocksdb::FileSystem> base = nullptr);
// ReadKeyFile(key_file), then NewEncryptedEnvWithKey.
absl::StatusOr<std::unique_ptr<rocksdb::Env>> NewEncryptedEnv(
    const std::string& key_file);

// Makes sure `key` is the key `data_dir` was written with, before RocksDB
// opens it. The directory's KEYCHECK file holds a random salt and
// HMAC-SHA256(key, label || salt): it proves which key belongs here without
// revealing anything about the key.
//   - KEYCHECK present: verified; FAILED_PRECONDITION "encryption key does
//     not match this data directory" on a mismatch, or when the file is
//     not a key-check file. Nothing in the directory is changed.
//   - KEYCHECK absent but a database present (e.g. restored from a backup
//     that left it out): the database's CURRENT file is decrypted with
//     `key` and must read as RocksDB wrote it; if so KEYCHECK is written,
//     otherwise FAILED_PRECONDITION (wrong key, or a store that was never
//     encrypted: migrating one needs an explicit export and import) and
//     nothing is changed.
//   - Neither: a new store; the directory is created (mode 0700) if need
//     be and KEYCHECK written.
// KEYCHECK is written atomically (a temporary file linked into place), so a
// crash never leaves a half-written one, and a concurrent first open by two
// processes ends with one KEYCHECK that both have verified.
absl::Status CheckOrCreateKeyCheck(const std::string& data_dir,
                                   const std::string& key);

}  // namespace referral::storage

#endif  // REFERRAL_STORAGE_ENCRYPTED_ENV_H_
