// Specification of encryption at rest: a RocksDB store opened through the
// encrypted Env keeps no personal data in plain bytes on disk and reads back
// with the same key; a wrong key is refused clearly by the key check before
// anything in the directory changes; and key files are read strictly,
// without their contents ever appearing in an error. All data is fictitious.
#include "encrypted_env.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "support/broker_process.h"

namespace referral::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// A fictitious child and referral, distinctive enough that finding the
// bytes on disk can only mean they were stored in plain text.
constexpr char kChildName[] = "Zebedee Quillfeather-Marchbanks";
constexpr char kReferralText[] =
    "Child: Zebedee Quillfeather-Marchbanks, DOB 2015-02-30, "
    "12 Fictional Row, PE1 9ZZ. Concern: neglect reported by school.";

constexpr char kKeyHex[] =
    "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210";
constexpr char kOtherKeyHex[] =
    "f0e1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff";

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

void WriteFile(const std::string& path, const std::string& contents,
               mode_t mode = 0600) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
  ::chmod(path.c_str(), mode);
}

// Writes a key file and returns the raw key read back through ReadKeyFile.
std::string KeyFrom(const testing::TempDir& dir, const std::string& name,
                    const std::string& hex) {
  const std::string path = dir.Sub(name);
  WriteFile(path, hex + "\n");
  absl::StatusOr<std::string> key = ReadKeyFile(path);
  EXPECT_TRUE(key.ok()) << key.status();
  return key.ok() ? *key : "";
}

// Every regular file under `dir` with its full contents.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) {
      files[entry.path().string()] = ReadFile(entry.path().string());
    }
  }
  return files;
}

std::unique_ptr<rocksdb::DB> OpenDb(rocksdb::Env* env, const std::string& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.env = env;
  rocksdb::DB* db = nullptr;
  const rocksdb::Status status = rocksdb::DB::Open(options, dir, &db);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return std::unique_ptr<rocksdb::DB>(db);
}

// Opens a store in `dir` the way the broker does: key check first, then the
// encrypted Env. Writes the fictitious referral, flushed to an SST, plus a
// second record left only in the write-ahead log.
void WriteReferralStore(const std::string& dir, const std::string& key) {
  ASSERT_TRUE(CheckOrCreateKeyCheck(dir, key).ok());
  absl::StatusOr<std::unique_ptr<rocksdb::Env>> env =
      NewEncryptedEnvWithKey(key);
  ASSERT_TRUE(env.ok()) << env.status();
  std::unique_ptr<rocksdb::DB> db = OpenDb(env->get(), dir);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Put({}, "referral/0001", kReferralText).ok());
  ASSERT_TRUE(db->Flush({}).ok());
  ASSERT_TRUE(
      db->Put({}, "referral/0002", std::string("WAL only: ") + kChildName)
          .ok());
  ASSERT_TRUE(db->Close().ok());
}

// --- Round trip and confidentiality ------------------------------------------

TEST(EncryptedEnvTest, NoFileHoldsPersonalDataInPlainBytes) {
  testing::TempDir tmp;
  const std::string key = KeyFrom(tmp, "key", kKeyHex);
  const std::string dir = tmp.Sub("data");
  WriteReferralStore(dir, key);

  const std::map<std::string, std::string> files = Snapshot(dir);
  ASSERT_FALSE(files.empty());
  bool saw_sst = false;
  for (const auto& [path, contents] : files) {
    saw_sst = saw_sst || path.ends_with(".sst");
    EXPECT_THAT(contents, Not(HasSubstr("Quillfeather"))) << path;
    EXPECT_THAT(contents, Not(HasSubstr("PE1 9ZZ"))) << path;
    // Not even RocksDB's own bookkeeping is readable.
    EXPECT_THAT(contents, Not(HasSubstr("referral/0001"))) << path;
    EXPECT_THAT(contents, Not(HasSubstr("MANIFEST-"))) << path;
  }
  EXPECT_TRUE(saw_sst) << "the referral was flushed to an SST file";
}

TEST(EncryptedEnvTest, ReopensAndReadsBackWithTheSameKey) {
  testing::TempDir tmp;
  const std::string key = KeyFrom(tmp, "key", kKeyHex);
  const std::string dir = tmp.Sub("data");
  WriteReferralStore(dir, key);

  // A fresh Env from the key file, as after a restart.
  ASSERT_TRUE(CheckOrCreateKeyCheck(dir, key).ok());
  absl::StatusOr<std::unique_ptr<rocksdb::Env>> env =
      NewEncryptedEnv(tmp.Sub("key"));
  ASSERT_TRUE(env.ok()) << env.status();
  std::unique_ptr<rocksdb::DB> db = OpenDb(env->get(), dir);
  ASSERT_NE(db, nullptr);
  std::string value;
  ASSERT_TRUE(db->Get({}, "referral/0001", &value).ok());
  EXPECT_EQ(value, kReferralText);
  ASSERT_TRUE(db->Get({}, "referral/0002", &value).ok())
      << "recovered from the encrypted write-ahead log";
  EXPECT_EQ(value, std::string("WAL only: ") + kChildName);
  ASSERT_TRUE(db->Close().ok());
}

TEST(EncryptedEnvTest, EveryFileGetsItsOwnRandomCounterAndNonce) {
  // Files created back to back (within one microsecond, which upstream's
  // clock-seeded prefix cannot tell apart) must not share a keystream.
  testing::TempDir tmp;
  absl::StatusOr<std::unique_ptr<rocksdb::Env>> env =
      NewEncryptedEnvWithKey(KeyFrom(tmp, "key", kKeyHex));
  ASSERT_TRUE(env.ok()) << env.status();
  std::set<std::string> prefixes;
  std::set<std::string> ciphertexts;
  constexpr int kFiles = 64;
  for (int i = 0; i < kFiles; ++i) {
    const std::string path = tmp.Sub("f" + std::to_string(i));
    std::unique_ptr<rocksdb::WritableFile> file;
    ASSERT_TRUE(
        (*env)->NewWritableFile(path, &file, rocksdb::EnvOptions()).ok());
    ASSERT_TRUE(file->Append("same plaintext in every file").ok());
    ASSERT_TRUE(file->Close().ok());
    const std::string raw = ReadFile(path);
    ASSERT_EQ(raw.size(), 4096u + 28u) << "4096-byte prefix, then the data";
    prefixes.insert(raw.substr(0, 32));  // initial counter and nonce
    ciphertexts.insert(raw.substr(4096));
  }
  EXPECT_EQ(prefixes.size(), static_cast<size_t>(kFiles));
  EXPECT_EQ(ciphertexts.size(), static_cast<size_t>(kFiles));
}

TEST(EncryptedEnvTest, RejectsAKeyOfTheWrongSize) {
  EXPECT_EQ(NewEncryptedEnvWithKey("too short").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NewEncryptedEnvWithKey(std::string(64, 'k')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- The key check -----------------------------------------------------------

TEST(KeyCheckTest, CreatesKeyCheckForANewStoreAndAcceptsTheSameKey) {
  testing::TempDir tmp;
  const std::string key = KeyFrom(tmp, "key", kKeyHex);
  const std::string dir = tmp.Sub("new/data");
  ASSERT_TRUE(CheckOrCreateKeyCheck(dir, key).ok());
  EXPECT_EQ(fs::status(dir).permissions() & fs::perms::all,
            fs::perms::owner_all)
      << "a new data directory is private";

  const std::string keycheck = ReadFile(dir + "/KEYCHECK");
  EXPECT_THAT(keycheck, HasSubstr("referral-broker-keycheck v1\n"));
  EXPECT_THAT(keycheck, Not(HasSubstr(kKeyHex))) << "never the key itself";
  EXPECT_EQ(fs::directory_iterator(dir)->path().filename(), "KEYCHECK")
      << "no temporary file left behind";

  EXPECT_TRUE(CheckOrCreateKeyCheck(dir, key).ok());
  EXPECT_EQ(ReadFile(dir + "/KEYCHECK"), keycheck) << "verified, not rewritten";
}

TEST(KeyCheckTest, WrongKeyFailsClearlyAndChangesNothing) {
  testing::TempDir tmp;
  const std::string key = KeyFrom(tmp, "key", kKeyHex);
  const std::string wrong = KeyFrom(tmp, "wrong", kOtherKeyHex);
  const std::string dir = tmp.Sub("data");
  WriteReferralStore(dir, key);
  const std::map<std::string, std::string> before = Snapshot(dir);

  const absl::Status status = CheckOrCreateKeyCheck(dir, wrong);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(status),
              HasSubstr("encryption key does not match this data directory"));
  EXPECT_THAT(Message(status), HasSubstr(dir));
  EXPECT_THAT(Message(status), Not(HasSubstr(kKeyHex)));
  EXPECT_THAT(Message(status), Not(HasSubstr(kOtherKeyHex)));
  EXPECT_EQ(Snapshot(dir), before);

  // The right key still works afterwards.
  EXPECT_TRUE(CheckOrCreateKeyCheck(dir, key).ok());
}

TEST(KeyCheckTest, WithoutKeyCheckTheDatabaseItselfProvesTheKey) {
  // E.g. a store restored from a backup that left KEYCHECK out.
  testing::TempDir tmp;
  const std::string key = KeyFrom(tmp, "key", kKeyHex);
  const std::string wrong = KeyFrom(tmp, "wrong", kOtherKeyHex);
  const std::string dir = tmp.Sub("data");
  WriteReferralStore(dir, key);
  fs::remove(dir + "/KEYCHECK");
  const std::map<std::string, std::string> before = Snapshot(dir);

  const absl::Status status = CheckOrCreateKeyCheck(dir, wrong);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(status),
              HasSubstr("encryption key does not match this data directory"));
  EXPECT_EQ(Snapshot(dir), before) << "no KEYCHECK written for a wrong key";

  ASSERT_TRUE(CheckOrCreateKeyCheck(dir, key).ok());
  EXPECT_TRUE(fs::exists(dir + "/KEYCHECK"));
  EXPECT_EQ(CheckOrCreateKeyCheck(dir, wrong).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(KeyCheckTest, RefusesAStoreThatWasNeverEncrypted) {
  testing::TempDir tmp;
  const std::string key = KeyFrom(tmp, "key", kKeyHex);
  const std::string dir = tmp.Sub("plain");
  {
    std::unique_ptr<rocksdb::DB> db = OpenDb(rocksdb::Env::Default(), dir);
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->Put({}, "referral/0001", kReferralText).ok());
    ASSERT_TRUE(db->Close().ok());
  }
  const std::map<std::string, std::string> before = Snapshot(dir);
  const absl::Status status = CheckOrCreateKeyCheck(dir, key);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(status), HasSubstr("not written encrypted"));
  EXPECT_EQ(Snapshot(dir), before);
}

TEST(KeyCheckTest, RefusesADamagedKeyCheckFile) {
  testing::TempDir tmp;
  const std::string key = KeyFrom(tmp, "key", kKeyHex);
  const std::string dir = tmp.Sub("data");
  ASSERT_TRUE(CheckOrCreateKeyCheck(dir, key).ok());
  WriteFile(dir + "/KEYCHECK", "referral-broker-keycheck v1\nsalt zz\n");
  const absl::Status status = CheckOrCreateKeyCheck(dir, key);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(status), HasSubstr("not a valid key-check file"));
  EXPECT_EQ(ReadFile(dir + "/KEYCHECK"),
            "referral-broker-keycheck v1\nsalt zz\n")
      << "left for a person to look at, not replaced";
}

TEST(KeyCheckTest, DataDirectoryMustBeADirectory) {
  testing::TempDir tmp;
  const std::string key = KeyFrom(tmp, "key", kKeyHex);
  WriteFile(tmp.Sub("file"), "x");
  EXPECT_EQ(CheckOrCreateKeyCheck(tmp.Sub("file"), key).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckOrCreateKeyCheck(tmp.Sub("d"), "short").code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Key files ---------------------------------------------------------------

TEST(ReadKeyFileTest, ReadsTheScriptsFormat) {
  testing::TempDir tmp;
  const std::string path = tmp.Sub("key");
  const std::string command = std::string("bash '") + REFERRAL_SOURCE_DIR +
                              "/deploy/make-encryption-key.sh' '" + path +
                              "' >/dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0);
  absl::StatusOr<std::string> key = ReadKeyFile(path);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->size(), kEncryptionKeyBytes);
}

TEST(ReadKeyFileTest, DecodesHexWithOrWithoutNewline) {
  testing::TempDir tmp;
  WriteFile(tmp.Sub("a"), kKeyHex);
  WriteFile(tmp.Sub("b"), std::string(kKeyHex) + "\r\n");
  absl::StatusOr<std::string> a = ReadKeyFile(tmp.Sub("a"));
  absl::StatusOr<std::string> b = ReadKeyFile(tmp.Sub("b"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(static_cast<unsigned char>((*a)[0]), 0x00);
  EXPECT_EQ(static_cast<unsigned char>((*a)[1]), 0x11);
  EXPECT_EQ(static_cast<unsigned char>((*a)[31]), 0x10);
}

TEST(ReadKeyFileTest, RejectsAnythingButAKeyWithoutEchoingIt) {
  testing::TempDir tmp;
  const std::string secretish = std::string(kKeyHex).substr(0, 40);
  for (const std::string& contents :
       {secretish + "\n", std::string(kKeyHex) + "00\n",
        std::string(kKeyHex).replace(10, 1, "g") + "\n",
        std::string(kKeyHex) + "\n\n", std::string(1000, 'a'), std::string()}) {
    const std::string path = tmp.Sub("bad");
    WriteFile(path, contents);
    const absl::Status status = ReadKeyFile(path).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << contents.size();
    EXPECT_THAT(Message(status), HasSubstr(path));
    EXPECT_THAT(Message(status), HasSubstr("64 hexadecimal characters"));
    EXPECT_THAT(Message(status), Not(HasSubstr(secretish.substr(0, 16))));
  }
  WriteFile(tmp.Sub("zero"), std::string(64, '0') + "\n");
  EXPECT_THAT(Message(ReadKeyFile(tmp.Sub("zero")).status()),
              HasSubstr("all zeros"));
}

TEST(ReadKeyFileTest, RejectsAKeyOtherUsersCanRead) {
  testing::TempDir tmp;
  WriteFile(tmp.Sub("open"), std::string(kKeyHex) + "\n", 0644);
  const absl::Status status = ReadKeyFile(tmp.Sub("open")).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(status), HasSubstr("chmod 600"));
  WriteFile(tmp.Sub("group"), std::string(kKeyHex) + "\n", 0640);
  EXPECT_TRUE(ReadKeyFile(tmp.Sub("group")).ok()) << "a service group may read";
}

TEST(ReadKeyFileTest, MissingFileIsNotFound) {
  const absl::Status status = ReadKeyFile("/nonexistent/broker.key").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(status), HasSubstr("/nonexistent/broker.key"));
  EXPECT_EQ(NewEncryptedEnv("/nonexistent/broker.key").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(KeyLocationTest, KeyMustLiveOutsideTheDataDirectory) {
  testing::TempDir tmp;
  fs::create_directories(tmp.Sub("data/sub"));
  fs::create_directories(tmp.Sub("data2"));
  fs::create_directories(tmp.Sub("secrets"));
  fs::create_directory_symlink(tmp.Sub("data"), tmp.Sub("link-to-data"));

  EXPECT_TRUE(
      CheckKeyFileOutsideDataDir(tmp.Sub("secrets/k"), tmp.Sub("data")).ok());
  EXPECT_TRUE(
      CheckKeyFileOutsideDataDir(tmp.Sub("data2/k"), tmp.Sub("data")).ok())
      << "a sibling with a longer name is outside";
  for (const std::string& inside :
       {tmp.Sub("data/k"), tmp.Sub("data/sub/k"), tmp.Sub("secrets/../data/k"),
        tmp.Sub("link-to-data/k")}) {
    const absl::Status status =
        CheckKeyFileOutsideDataDir(inside, tmp.Sub("data/"));
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << inside;
    EXPECT_THAT(Message(status), HasSubstr("outside the data directory"));
  }
}

}  // namespace
}  // namespace referral::storage
