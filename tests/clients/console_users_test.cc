// The console's users file: Argon2id hashes written by add-user, mode 0600,
// replaced on a password reset, verified at sign-in.
#include "console_users.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "support/broker_process.h"

namespace referral::clients {
namespace {

// Cheap hashes so the tests run in milliseconds; production uses the
// defaults (t=3, 64 MiB).
PasswordCost FastCost() {
  PasswordCost cost;
  cost.iterations = 1;
  cost.memory_kib = 1024;
  return cost;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

TEST(ConsoleUsersTest, AddedUserVerifiesWithItsPasswordOnly) {
  testing::TempDir dir;
  const std::string file = dir.Sub("users");
  ASSERT_TRUE(
      AddUser(file, "sw.jones", "fictitious passphrase 1", FastCost()).ok());
  absl::StatusOr<UserDirectory> users = UserDirectory::Load(file);
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_EQ(users->size(), 1u);
  EXPECT_TRUE(users->Verify("sw.jones", "fictitious passphrase 1"));
  EXPECT_FALSE(users->Verify("sw.jones", "fictitious passphrase 2"));
  EXPECT_FALSE(users->Verify("sw.jones", ""));
  // An unknown name fails even with another user's password.
  EXPECT_FALSE(users->Verify("sw.smith", "fictitious passphrase 1"));
}

TEST(ConsoleUsersTest, FileIsOwnerOnlyAndHoldsNoPassword) {
  testing::TempDir dir;
  const std::string file = dir.Sub("users");
  ASSERT_TRUE(
      AddUser(file, "alice", "fictitious passphrase 1", FastCost()).ok());
  struct stat info {};
  ASSERT_EQ(stat(file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
  const std::string content = ReadAll(file);
  EXPECT_NE(content.find("alice:$argon2id$v=19$m=1024,t=1,p=1$"),
            std::string::npos);
  EXPECT_EQ(content.find("fictitious passphrase"), std::string::npos);
}

TEST(ConsoleUsersTest, SaltsDifferSoEqualPasswordsHashDifferently) {
  absl::StatusOr<std::string> a = HashPassword("same passphrase", FastCost());
  absl::StatusOr<std::string> b = HashPassword("same passphrase", FastCost());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(ConsoleUsersTest, AddingAnExistingUserReplacesItsPasswordOnly) {
  testing::TempDir dir;
  const std::string file = dir.Sub("users");
  ASSERT_TRUE(AddUser(file, "alice", "old fictitious pass", FastCost()).ok());
  ASSERT_TRUE(AddUser(file, "bob", "bobs fictitious pass", FastCost()).ok());
  ASSERT_TRUE(AddUser(file, "alice", "new fictitious pass", FastCost()).ok());
  absl::StatusOr<UserDirectory> users = UserDirectory::Load(file);
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_EQ(users->size(), 2u);
  EXPECT_FALSE(users->Verify("alice", "old fictitious pass"));
  EXPECT_TRUE(users->Verify("alice", "new fictitious pass"));
  EXPECT_TRUE(users->Verify("bob", "bobs fictitious pass"));
}

TEST(ConsoleUsersTest, RefusesBadNamesAndShortPasswords) {
  testing::TempDir dir;
  const std::string file = dir.Sub("users");
  EXPECT_TRUE(absl::IsInvalidArgument(
      AddUser(file, "", "fictitious passphrase", FastCost())));
  EXPECT_TRUE(absl::IsInvalidArgument(
      AddUser(file, "a:b", "fictitious passphrase", FastCost())));
  EXPECT_TRUE(absl::IsInvalidArgument(
      AddUser(file, "with space", "fictitious passphrase", FastCost())));
  EXPECT_TRUE(absl::IsInvalidArgument(AddUser(
      file, std::string(65, 'a'), "fictitious passphrase", FastCost())));
  EXPECT_TRUE(
      absl::IsInvalidArgument(AddUser(file, "alice", "short", FastCost())));
  EXPECT_TRUE(absl::IsNotFound(UserDirectory::Load(file).status()));
}

TEST(ConsoleUsersTest, MalformedLineIsRefusedByLineNumber) {
  testing::TempDir dir;
  const std::string file = dir.Sub("users");
  std::ofstream(file) << "# comment\n\nalice:plaintext-password\n";
  absl::StatusOr<UserDirectory> users = UserDirectory::Load(file);
  ASSERT_TRUE(absl::IsInvalidArgument(users.status()));
  EXPECT_NE(users.status().message().find(":3:"), std::string::npos);
  // The offending content is not echoed.
  EXPECT_EQ(users.status().message().find("plaintext-password"),
            std::string::npos);
}

TEST(ConsoleUsersTest, EmptyDirectoryVerifiesNobody) {
  testing::TempDir dir;
  const std::string file = dir.Sub("users");
  std::ofstream(file) << "# no users yet\n";
  absl::StatusOr<UserDirectory> users = UserDirectory::Load(file);
  ASSERT_TRUE(users.ok());
  EXPECT_FALSE(users->Verify("alice", "fictitious passphrase"));
}

}  // namespace
}  // namespace referral::clients
