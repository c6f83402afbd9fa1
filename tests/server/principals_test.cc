// Specification of the principals file: the shipped example matches the
// development certificates, identities are matched exactly, triage queue
// restrictions, and every mistake in a hand-edited file is reported with its
// location instead of silently granting or dropping access.
#include "security/principals.h"

#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/broker_process.h"

namespace referral::server {
namespace {

using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr char kShippedPrincipals[] =
    REFERRAL_SOURCE_DIR "/server/config/principals.txtpb";

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

// Parses `text` expecting failure; returns the error message.
std::string ParseError(std::string_view text) {
  absl::StatusOr<std::unique_ptr<PrincipalDirectory>> parsed =
      PrincipalDirectory::Parse(text, "test.txtpb");
  EXPECT_FALSE(parsed.ok()) << "parsed although invalid:\n" << text;
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  return Message(parsed.status());
}

std::unique_ptr<PrincipalDirectory> ParseOk(std::string_view text) {
  absl::StatusOr<std::unique_ptr<PrincipalDirectory>> parsed =
      PrincipalDirectory::Parse(text, "test.txtpb");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *std::move(parsed) : nullptr;
}

// --- The shipped example ---------------------------------------------------

TEST(ShippedPrincipalsTest, LoadsAndListsEveryDevelopmentCertificate) {
  absl::StatusOr<std::unique_ptr<PrincipalDirectory>> directory =
      PrincipalDirectory::LoadFile(kShippedPrincipals);
  ASSERT_TRUE(directory.ok()) << directory.status();
  // The client names deploy/make-dev-certs.sh issues, each mapped through
  // the URI SAN it puts in the certificate.
  for (const char* name :
       {"cambs-police", "peterborough-school-1", "nwangliaft-hospital",
        "triage-console", "triage-cli", "ops", "admin"}) {
    const Principal* principal =
        (*directory)->Find(std::string("spiffe://referral-broker/") + name);
    ASSERT_NE(principal, nullptr) << name;
    EXPECT_EQ(principal->name, name);
  }
  EXPECT_EQ((*directory)->principals().size(), 7u);
  // The test-only certificates are deliberately absent.
  EXPECT_EQ((*directory)->Find("spiffe://referral-broker/intruder"), nullptr);
  EXPECT_EQ((*directory)->Find("spiffe://referral-broker/expired"), nullptr);
}

TEST(ShippedPrincipalsTest, GivesEachPrincipalItsRoles) {
  absl::StatusOr<std::unique_ptr<PrincipalDirectory>> directory =
      PrincipalDirectory::LoadFile(kShippedPrincipals);
  ASSERT_TRUE(directory.ok()) << directory.status();
  auto find = [&](std::string_view name) {
    return (*directory)
        ->Find(std::string("spiffe://referral-broker/") + std::string(name));
  };

  for (const char* agency :
       {"cambs-police", "peterborough-school-1", "nwangliaft-hospital"}) {
    const Principal* principal = find(agency);
    ASSERT_NE(principal, nullptr);
    EXPECT_THAT(principal->roles, ElementsAre(Role::kAgency)) << agency;
    EXPECT_EQ(principal->agency_id, agency);
  }
  for (const char* triage : {"triage-console", "triage-cli"}) {
    const Principal* principal = find(triage);
    ASSERT_NE(principal, nullptr);
    // The console shows ops their overview as well.
    if (std::string_view(triage) == "triage-console") {
      EXPECT_THAT(principal->roles, ElementsAre(Role::kTriage, Role::kOps));
    } else {
      EXPECT_THAT(principal->roles, ElementsAre(Role::kTriage)) << triage;
    }
    EXPECT_THAT(principal->allowed_queues, IsEmpty()) << "works every queue";
    EXPECT_THAT(principal->agency_id, IsEmpty());
  }
  ASSERT_NE(find("ops"), nullptr);
  EXPECT_THAT(find("ops")->roles, ElementsAre(Role::kOps));
  ASSERT_NE(find("admin"), nullptr);
  EXPECT_THAT(find("admin")->roles,
              UnorderedElementsAre(Role::kAdmin, Role::kOps));
}

// --- Lookup ----------------------------------------------------------------

constexpr char kTwoPrincipals[] = R"pb(
  principals {
    identity: "spiffe://referral-broker/cambs-police"
    name: "cambs-police"
    roles: ROLE_AGENCY
    agency_id: "cambs-police"
  }
  principals {
    identity: "legacy-triage-tool"
    name: "legacy-triage"
    roles: ROLE_TRIAGE
    allowed_queues: [ "ifd-triage", "out-of-area" ]
  }
)pb";

TEST(PrincipalDirectoryTest, FindsByExactIdentityOnly) {
  std::unique_ptr<PrincipalDirectory> directory = ParseOk(kTwoPrincipals);
  ASSERT_NE(directory, nullptr);

  const Principal* police =
      directory->Find("spiffe://referral-broker/cambs-police");
  ASSERT_NE(police, nullptr);
  EXPECT_EQ(police->name, "cambs-police");
  EXPECT_EQ(police->identity, "spiffe://referral-broker/cambs-police");
  ASSERT_NE(directory->Find("legacy-triage-tool"), nullptr);

  // Certificate names compare byte for byte: no case folding, no prefixes,
  // no matching the name instead of the identity.
  EXPECT_EQ(directory->Find("SPIFFE://referral-broker/cambs-police"), nullptr);
  EXPECT_EQ(directory->Find("spiffe://referral-broker/cambs-police/x"),
            nullptr);
  EXPECT_EQ(directory->Find("spiffe://referral-broker/cambs"), nullptr);
  EXPECT_EQ(directory->Find("cambs-police"), nullptr);
  EXPECT_EQ(directory->Find(""), nullptr);
}

TEST(PrincipalDirectoryTest, KeepsFileOrder) {
  std::unique_ptr<PrincipalDirectory> directory = ParseOk(kTwoPrincipals);
  ASSERT_NE(directory, nullptr);
  ASSERT_EQ(directory->principals().size(), 2u);
  EXPECT_EQ(directory->principals()[0].name, "cambs-police");
  EXPECT_EQ(directory->principals()[1].name, "legacy-triage");
}

TEST(PrincipalTest, TriageQueueRestrictions) {
  std::unique_ptr<PrincipalDirectory> directory = ParseOk(kTwoPrincipals);
  ASSERT_NE(directory, nullptr);
  const Principal* triage = directory->Find("legacy-triage-tool");
  ASSERT_NE(triage, nullptr);
  EXPECT_THAT(triage->allowed_queues, ElementsAre("ifd-triage", "out-of-area"));
  EXPECT_TRUE(triage->MayUseQueue("ifd-triage"));
  EXPECT_TRUE(triage->MayUseQueue("out-of-area"));
  EXPECT_FALSE(triage->MayUseQueue("ifd-urgent"));
  EXPECT_FALSE(triage->MayUseQueue("ifd-triage2"));
  EXPECT_FALSE(triage->MayUseQueue(""));

  Principal unrestricted;
  unrestricted.roles = {Role::kTriage};
  EXPECT_TRUE(unrestricted.MayUseQueue("ifd-urgent"));
  EXPECT_TRUE(unrestricted.MayUseQueue("any-queue"));
}

TEST(PrincipalTest, HasRoleAndRoleNames) {
  Principal admin;
  admin.roles = {Role::kAdmin, Role::kOps};
  EXPECT_TRUE(admin.HasRole(Role::kAdmin));
  EXPECT_TRUE(admin.HasRole(Role::kOps));
  EXPECT_FALSE(admin.HasRole(Role::kTriage));
  EXPECT_FALSE(admin.HasRole(Role::kAgency));
  EXPECT_EQ(RoleName(Role::kAgency), "agency");
  EXPECT_EQ(RoleName(Role::kTriage), "triage");
  EXPECT_EQ(RoleName(Role::kOps), "ops");
  EXPECT_EQ(RoleName(Role::kAdmin), "admin");
}

TEST(PrincipalDirectoryTest, ChecksAllowedQueuesAgainstConfiguredQueues) {
  std::unique_ptr<PrincipalDirectory> directory = ParseOk(kTwoPrincipals);
  ASSERT_NE(directory, nullptr);
  EXPECT_TRUE(directory
                  ->CheckQueues([](std::string_view queue) {
                    return queue == "ifd-triage" || queue == "out-of-area";
                  })
                  .ok());
  const absl::Status status = directory->CheckQueues(
      [](std::string_view queue) { return queue == "ifd-triage"; });
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status),
              HasSubstr("principal \"legacy-triage\": unknown queue "
                        "\"out-of-area\""));
  EXPECT_THAT(Message(status), Not(HasSubstr("\"ifd-triage\"")));
}

// --- Loading ---------------------------------------------------------------

TEST(PrincipalDirectoryTest, MissingFileIsNotFoundAndNamesThePath) {
  absl::StatusOr<std::unique_ptr<PrincipalDirectory>> directory =
      PrincipalDirectory::LoadFile("/nonexistent/principals.txtpb");
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(directory.status()),
              HasSubstr("/nonexistent/principals.txtpb"));
}

TEST(PrincipalDirectoryTest, ErrorsFromAFileNameThatFile) {
  referral::testing::TempDir dir;
  const std::string path = dir.Sub("principals.txtpb");
  std::ofstream(path) << "principals {\n  identity: \"x\"\n}\n";
  absl::StatusOr<std::unique_ptr<PrincipalDirectory>> directory =
      PrincipalDirectory::LoadFile(path);
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(directory.status()), HasSubstr(path + ":"));
}

// --- Mistakes, each located in the file ------------------------------------

TEST(PrincipalsErrorsTest, SyntaxErrorHasLineAndColumn) {
  EXPECT_THAT(ParseError("principals {\n  identity \"x\"\n}\n"),
              HasSubstr("test.txtpb:2:"));
  // Protobuf places an unknown enum value at the token after it.
  const std::string unknown_role =
      ParseError("principals {\n  roles: ROLE_SUPERUSER\n}\n");
  EXPECT_THAT(unknown_role, ContainsRegex("^test\\.txtpb:[0-9]+:[0-9]+: "));
  EXPECT_THAT(unknown_role, HasSubstr("ROLE_SUPERUSER"));
  EXPECT_THAT(ParseError("principal { }\n"), HasSubstr("test.txtpb:1:"));
}

TEST(PrincipalsErrorsTest, EmptyFileLocksEveryoneOutSoIsRefused) {
  EXPECT_THAT(ParseError(""),
              HasSubstr("test.txtpb: principals: required: at least one"));
}

TEST(PrincipalsErrorsTest, DuplicateIdentity) {
  // Plain strings where columns are checked: clang-format reflows R"pb(...)".
  EXPECT_THAT(ParseError("principals { identity: \"spiffe://x/a\" name: \"a\" "
                         "roles: ROLE_OPS }\n"
                         "principals { identity: \"spiffe://x/a\" name: \"b\" "
                         "roles: ROLE_ADMIN }\n"),
              HasSubstr("test.txtpb:2:14: principals[1].identity: duplicate "
                        "identity \"spiffe://x/a\""));
}

TEST(PrincipalsErrorsTest, MissingOrUnprintableIdentity) {
  EXPECT_THAT(ParseError("principals { name: \"a\" roles: ROLE_OPS }"),
              HasSubstr("principals[0].identity: required"));
  EXPECT_THAT(
      ParseError("principals { identity: \" a\" name: \"a\" roles: ROLE_OPS }"),
      HasSubstr("principals[0].identity:"));
  EXPECT_THAT(ParseError("principals { identity: \"caf\\303\\251\" name: \"a\" "
                         "roles: ROLE_OPS }"),
              HasSubstr("principals[0].identity:"));
}

TEST(PrincipalsErrorsTest, BadOrDuplicateName) {
  EXPECT_THAT(ParseError("principals { identity: \"i\" roles: ROLE_OPS }"),
              HasSubstr("principals[0].name: required: 1 to 64 characters "
                        "from [a-z0-9-]"));
  EXPECT_THAT(
      ParseError("principals { identity: \"i\" name: \"Ops Team\" roles: "
                 "ROLE_OPS }"),
      HasSubstr("principals[0].name:"));
  EXPECT_THAT(ParseError(R"pb(
                principals { identity: "i" name: "ops" roles: ROLE_OPS }
                principals { identity: "j" name: "ops" roles: ROLE_OPS }
              )pb"),
              HasSubstr("principals[1].name: duplicate name \"ops\""));
}

TEST(PrincipalsErrorsTest, NoRoles) {
  EXPECT_THAT(ParseError("principals {\n identity: \"i\"\n name: \"a\"\n}"),
              HasSubstr("test.txtpb:1:1: principals[0].roles: required: at "
                        "least one role"));
}

TEST(PrincipalsErrorsTest, UnspecifiedOrRepeatedRole) {
  EXPECT_THAT(
      ParseError(
          "principals { identity: \"i\" name: \"a\" roles: ROLE_UNSPECIFIED }"),
      HasSubstr("principals[0].roles[0]: must be ROLE_AGENCY, ROLE_TRIAGE, "
                "ROLE_OPS or ROLE_ADMIN"));
  EXPECT_THAT(ParseError("principals { identity: \"i\" name: \"a\" roles: "
                         "ROLE_OPS roles: ROLE_OPS }"),
              HasSubstr("principals[0].roles[1]: role listed more than once"));
}

TEST(PrincipalsErrorsTest, AgencyRoleStandsAlone) {
  EXPECT_THAT(ParseError(R"pb(
                principals {
                  identity: "i"
                  name: "a"
                  roles: [ ROLE_AGENCY, ROLE_TRIAGE ]
                  agency_id: "a"
                }
              )pb"),
              HasSubstr("principals[0].roles: ROLE_AGENCY cannot be combined "
                        "with other roles"));
}

TEST(PrincipalsErrorsTest, AgencyNeedsAValidAgencyId) {
  EXPECT_THAT(
      ParseError("principals {\n identity: \"i\"\n name: \"a\"\n roles: "
                 "ROLE_AGENCY\n}"),
      HasSubstr("test.txtpb:1:1: principals[0].agency_id: required with "
                "ROLE_AGENCY"));
  EXPECT_THAT(ParseError("principals {\n identity: \"i\"\n name: \"a\"\n "
                         "roles: ROLE_AGENCY\n agency_id: \"Cambs Police\"\n}"),
              HasSubstr("test.txtpb:5:2: principals[0].agency_id: must be 1 to "
                        "64 characters from [a-z0-9-]"));
  EXPECT_THAT(
      ParseError("principals { identity: \"i\" name: \"a\" roles: ROLE_AGENCY "
                 "agency_id: \"" +
                 std::string(65, 'a') + "\" }"),
      HasSubstr("principals[0].agency_id: must be 1 to 64 characters"));
}

TEST(PrincipalsErrorsTest, AgencyIdOnlyForAgencies) {
  EXPECT_THAT(ParseError("principals { identity: \"i\" name: \"a\" roles: "
                         "ROLE_TRIAGE agency_id: \"cambs-police\" }"),
              HasSubstr("principals[0].agency_id: only allowed with "
                        "ROLE_AGENCY"));
}

TEST(PrincipalsErrorsTest, BadOrRepeatedQueueNames) {
  const std::string error = ParseError(
      "principals {\n"
      "  identity: \"i\"\n"
      "  name: \"a\"\n"
      "  roles: ROLE_TRIAGE\n"
      "  allowed_queues: \"ifd-triage\"\n"
      "  allowed_queues: \"IFD Urgent\"\n"
      "  allowed_queues: \"ifd-triage\"\n"
      "  allowed_queues: \"\"\n"
      "}\n");
  EXPECT_THAT(error, HasSubstr("test.txtpb:6:3: principals[0].allowed_queues[1]"
                               ": must be a queue name"));
  EXPECT_THAT(error, HasSubstr("test.txtpb:7:3: principals[0].allowed_queues[2]"
                               ": queue \"ifd-triage\" listed more than once"));
  EXPECT_THAT(error, HasSubstr("test.txtpb:8:3: principals[0].allowed_queues[3]"
                               ": must be a queue name"));
}

TEST(PrincipalsErrorsTest, AllowedQueuesOnlyForTriage) {
  EXPECT_THAT(ParseError("principals { identity: \"i\" name: \"a\" roles: "
                         "ROLE_OPS allowed_queues: \"ifd-triage\" }"),
              HasSubstr("principals[0].allowed_queues: only allowed with "
                        "ROLE_TRIAGE"));
}

TEST(PrincipalsErrorsTest, ReportsEveryMistakeAtOnce) {
  const std::string error = ParseError(R"pb(
    principals { identity: "i" name: "a" roles: ROLE_AGENCY }
    principals { identity: "i" name: "b" }
  )pb");
  EXPECT_THAT(error, HasSubstr("principals[0].agency_id: required"));
  EXPECT_THAT(error, HasSubstr("principals[1].identity: duplicate identity"));
  EXPECT_THAT(error, HasSubstr("principals[1].roles: required"));
}

}  // namespace
}  // namespace referral::server
