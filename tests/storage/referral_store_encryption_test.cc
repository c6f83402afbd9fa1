// Encryption at rest through ReferralStore::Open: no personal data in any
// file of the data directory, the right key reads it back, a wrong key fails
// clearly and changes nothing.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/referral_store.h"
#include "storage/store_test_util.h"

namespace referral::storage::testing {
namespace {

using ::testing::HasSubstr;

// A fictitious name distinctive enough that finding it anywhere on disk can
// only mean the plaintext leaked.
constexpr char kGivenName[] = "Zephyrine";
constexpr char kFamilyName[] = "Quillfeather-Oddsock";

class EncryptedStoreTest : public StoreTest {
 protected:
  EncryptedStoreTest()
      : data_dir_(dir_.path() + "/data"),
        key_(dir_.path() + "/keys/broker.key"),
        other_key_(dir_.path() + "/keys/other.key") {
    std::filesystem::create_directories(dir_.path() + "/keys");
    WriteKeyFile(key_, 'a');
    WriteKeyFile(other_key_, 'b');
  }

  StoreOptions Options(const std::string& key_file) {
    StoreOptions options = OptionsFor(data_dir_);
    options.encryption_key_file = key_file;
    return options;
  }

  const std::string data_dir_;
  const std::string key_;
  const std::string other_key_;
};

TEST_F(EncryptedStoreTest, NoPlaintextOnDiskAndOnlyTheRightKeyOpens) {
  std::string referral_id;
  {
    auto store = ReferralStore::Open(Options(key_));
    ASSERT_TRUE(store.ok()) << store.status();
    SubmitCommand submit = MakeSubmit("idem-1", clock_.Now());
    auto* child = submit.referral.mutable_children(0);
    child->set_given_name(kGivenName);
    child->set_family_name(kFamilyName);
    auto submitted = CommitNow(**store, std::move(submit));
    ASSERT_TRUE(submitted.ok()) << submitted.status();
    referral_id = submitted->record.referral_id();
  }

  // Every file, read whole: SSTs, WAL, MANIFEST, OPTIONS, LOG, KEYCHECK.
  int files = 0;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(data_dir_)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    const std::string contents = ReadWholeFile(entry.path());
    EXPECT_FALSE(absl::StrContains(contents, kGivenName)) << entry.path();
    EXPECT_FALSE(absl::StrContains(contents, kFamilyName)) << entry.path();
    // The referral id is not personal data, but finding it would show the
    // records are stored in the clear.
    EXPECT_FALSE(absl::StrContains(contents, referral_id)) << entry.path();
  }
  EXPECT_GT(files, 3);

  {
    auto store = ReferralStore::Open(Options(key_));
    ASSERT_TRUE(store.ok()) << store.status();
    auto record = (*store)->GetReferral(referral_id);
    ASSERT_TRUE(record.ok()) << record.status();
    EXPECT_EQ(record->referral().children(0).given_name(), kGivenName);
    EXPECT_EQ(record->referral().children(0).family_name(), kFamilyName);
  }

  {
    auto store = ReferralStore::Open(Options(other_key_));
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(store.status().message(),
                HasSubstr("encryption key does not match"));
  }
  {
    // Without any key: refused before RocksDB touches the directory.
    auto store = ReferralStore::Open(Options(""));
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  }

  // The failed opens changed nothing: the right key still reads the data.
  auto store = ReferralStore::Open(Options(key_));
  ASSERT_TRUE(store.ok()) << store.status();
  auto record = (*store)->GetReferral(referral_id);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->referral().children(0).given_name(), kGivenName);
}

TEST_F(EncryptedStoreTest, RefusesAKeyFileInsideTheDataDirectory) {
  std::filesystem::create_directories(data_dir_);
  const std::string inside = data_dir_ + "/broker.key";
  WriteKeyFile(inside, 'c');
  auto store = ReferralStore::Open(Options(inside));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(EncryptedStoreTest, MissingKeyFileFailsOpen) {
  auto store = ReferralStore::Open(Options(dir_.path() + "/keys/absent.key"));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace referral::storage::testing
