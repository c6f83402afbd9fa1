// Specification of who may call what: the complete role x method matrix,
// written out here independently of the policy table so that any change to
// the table shows up as a failing cell, plus deny by default and the queue
// restrictions of triage principals.
#include "security/access_policy.h"

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace referral::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr bool Y = true;   // allowed
constexpr bool n = false;  // denied

struct Row {
  BrokerMethod method;
  bool agency;
  bool triage;
  bool ops;
  bool admin;
};

// The whole policy. Agencies submit and follow their own referrals; triage
// works the queues; ops sees counts; admin runs the broker and sees what
// ops sees. Nobody but an agency submits, nobody but triage reads a queue.
// clang-format off
constexpr Row kMatrix[] = {
    //                                  agency triage ops admin
    {BrokerMethod::kSubmitReferral,     Y,     n,     n,  n},
    {BrokerMethod::kSubmitReferrals,    Y,     n,     n,  n},
    {BrokerMethod::kGetReferralStatus,  Y,     n,     n,  n},
    {BrokerMethod::kListOutcomes,       Y,     n,     n,  n},
    {BrokerMethod::kAcknowledgeOutcome, Y,     n,     n,  n},
    {BrokerMethod::kListQueue,          n,     Y,     n,  n},
    {BrokerMethod::kClaimReferrals,     n,     Y,     n,  n},
    {BrokerMethod::kExtendClaim,        n,     Y,     n,  n},
    {BrokerMethod::kReleaseReferral,    n,     Y,     n,  n},
    {BrokerMethod::kRecordDecision,     n,     Y,     n,  n},
    {BrokerMethod::kWatchQueue,         n,     Y,     n,  n},
    {BrokerMethod::kGetQueueStats,      n,     n,     Y,  Y},
    {BrokerMethod::kListDeadLetters,    n,     n,     Y,  Y},
    {BrokerMethod::kListNotices,        n,     Y,     n,  n},
    {BrokerMethod::kRequeueDeadLetter,  n,     n,     n,  Y},
    {BrokerMethod::kExportAudit,        n,     n,     n,  Y},
    {BrokerMethod::kVerifyAudit,        n,     n,     n,  Y},
    {BrokerMethod::kReloadConfig,       n,     n,     n,  Y},
    {BrokerMethod::kCreateBackup,       n,     n,     n,  Y},
    {BrokerMethod::kListBackups,        n,     n,     n,  Y},
    {BrokerMethod::kVerifyBackup,       n,     n,     n,  Y},
};
// clang-format on

struct Case {
  Role role;
  BrokerMethod method;
  bool allowed;
};

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (const Row& row : kMatrix) {
    cases.push_back({Role::kAgency, row.method, row.agency});
    cases.push_back({Role::kTriage, row.method, row.triage});
    cases.push_back({Role::kOps, row.method, row.ops});
    cases.push_back({Role::kAdmin, row.method, row.admin});
  }
  return cases;
}

Principal WithRoles(std::set<Role> roles) {
  Principal principal;
  principal.name = "test-principal";
  principal.identity = "spiffe://referral-broker/test-principal";
  principal.roles = std::move(roles);
  if (principal.HasRole(Role::kAgency)) principal.agency_id = "test-agency";
  return principal;
}

class AccessMatrixTest : public ::testing::TestWithParam<Case> {};

TEST_P(AccessMatrixTest, SingleRole) {
  const Case& c = GetParam();
  const absl::Status status = Authorize(WithRoles({c.role}), c.method);
  if (c.allowed) {
    EXPECT_TRUE(status.ok()) << status;
  } else {
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(std::string(status.message()),
              "role may not call " + std::string(MethodName(c.method)));
  }
}

INSTANTIATE_TEST_SUITE_P(EveryRoleAndMethod, AccessMatrixTest,
                         ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string role(RoleName(info.param.role));
                           role[0] = static_cast<char>(role[0] - 'a' + 'A');
                           return role + "_" +
                                  std::string(MethodName(info.param.method)) +
                                  (info.param.allowed ? "_Allowed" : "_Denied");
                         });

TEST(AccessPolicyTest, MatrixCoversEveryMethodOnce) {
  std::set<BrokerMethod> in_matrix;
  for (const Row& row : kMatrix) {
    EXPECT_TRUE(in_matrix.insert(row.method).second) << MethodName(row.method);
  }
  EXPECT_EQ(in_matrix.size(), kAllBrokerMethods.size());
  for (BrokerMethod method : kAllBrokerMethods) {
    EXPECT_TRUE(in_matrix.contains(method)) << MethodName(method);
  }
}

TEST(AccessPolicyTest, MethodNamesAreTheRpcNames) {
  EXPECT_EQ(MethodName(BrokerMethod::kSubmitReferral), "SubmitReferral");
  EXPECT_EQ(MethodName(BrokerMethod::kWatchQueue), "WatchQueue");
  EXPECT_EQ(MethodName(BrokerMethod::kCreateBackup), "CreateBackup");
  std::set<std::string> names;
  for (BrokerMethod method : kAllBrokerMethods) {
    const std::string name(MethodName(method));
    EXPECT_NE(name, "UnknownMethod");
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
  }
}

TEST(AccessPolicyTest, RolesCombineAsAUnion) {
  // The shipped admin principal holds admin and ops.
  const Principal admin_ops = WithRoles({Role::kAdmin, Role::kOps});
  for (const Row& row : kMatrix) {
    EXPECT_EQ(Authorize(admin_ops, row.method).ok(), row.ops || row.admin)
        << MethodName(row.method);
  }
  const Principal triage_ops = WithRoles({Role::kTriage, Role::kOps});
  for (const Row& row : kMatrix) {
    EXPECT_EQ(Authorize(triage_ops, row.method).ok(), row.triage || row.ops)
        << MethodName(row.method);
  }
}

TEST(AccessPolicyTest, NoRolesMeansNothing) {
  const Principal nobody = WithRoles({});
  for (BrokerMethod method : kAllBrokerMethods) {
    EXPECT_EQ(Authorize(nobody, method).code(),
              absl::StatusCode::kPermissionDenied)
        << MethodName(method);
  }
}

TEST(AccessPolicyTest, MethodMissingFromTheTableIsDeniedToEveryone) {
  const Principal everything =
      WithRoles({Role::kAgency, Role::kTriage, Role::kOps, Role::kAdmin});
  const BrokerMethod future = static_cast<BrokerMethod>(9999);
  const absl::Status status = Authorize(everything, future);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(std::string(status.message()), "role may not call UnknownMethod");
}

TEST(AccessPolicyTest, DenialNamesNoCaller) {
  const absl::Status status =
      Authorize(WithRoles({Role::kOps}), BrokerMethod::kClaimReferrals);
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("test-principal")));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("spiffe")));
}

TEST(AuthorizeQueueTest, UnrestrictedTriageMayUseAnyQueue) {
  const Principal triage = WithRoles({Role::kTriage});
  EXPECT_TRUE(AuthorizeQueue(triage, "ifd-urgent").ok());
  EXPECT_TRUE(AuthorizeQueue(triage, "out-of-area").ok());
}

TEST(AuthorizeQueueTest, RestrictedTriageMayUseOnlyItsQueues) {
  Principal triage = WithRoles({Role::kTriage});
  triage.allowed_queues = {"ifd-triage", "out-of-area"};
  EXPECT_TRUE(AuthorizeQueue(triage, "ifd-triage").ok());
  EXPECT_TRUE(AuthorizeQueue(triage, "out-of-area").ok());

  const absl::Status denied = AuthorizeQueue(triage, "ifd-urgent");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(std::string(denied.message()), "principal may not use this queue");
  EXPECT_EQ(AuthorizeQueue(triage, "").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(AuthorizeQueueTest, DoesNotEchoTheRequestedQueue) {
  // The queue comes from the client and may be anything, including text
  // that must not reach the logs.
  Principal triage = WithRoles({Role::kTriage});
  triage.allowed_queues = {"ifd-triage"};
  const absl::Status status =
      AuthorizeQueue(triage, "Child: Zebedee Quillfeather\nforged log line");
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("Quillfeather")));
}

}  // namespace
}  // namespace referral::server
