// The store's tamper-evident audit trail: one record per mutation (and per
// recorded read) in the same write as the change, chained by SHA-256, kept
// across reopen, and verified so that an edited or deleted record is found.
#include "storage/audit_trail.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "storage/referral_store.h"
#include "storage/store_test_util.h"

namespace referral::storage::testing {
namespace {

using ::testing::ElementsAre;
using Failure = FaultInjectionFileSystem::Failure;

class AuditTrailTest : public StoreTest {
 protected:
  void SetUp() override { Open(); }

  StoreOptions Options() override {
    StoreOptions options = StoreTest::Options();
    options.max_deliveries = 1;  // one release dead-letters (for requeue)
    return options;
  }

  using StoreTest::Submit;
  StoredReferral Submit(const std::string& key, AuditContext audit) {
    SubmitCommand command = MakeSubmit(key, clock_.Now());
    command.audit = std::move(audit);
    return Submit(std::move(command));
  }

  std::vector<AuditRecord> All() {
    auto records = ExportAudit(*store_, absl::InfinitePast(),
                               absl::InfiniteFuture(), 100000);
    EXPECT_TRUE(records.ok()) << records.status();
    return records.ok() ? *records : std::vector<AuditRecord>();
  }

  static std::vector<std::string> Actions(
      const std::vector<AuditRecord>& records) {
    std::vector<std::string> actions;
    for (const AuditRecord& r : records) actions.push_back(r.action());
    return actions;
  }

  // Runs `edit` on the raw database with the store closed, then reopens.
  template <typename Edit>
  void TamperWithRawDatabase(Edit edit) {
    Close();
    {
      RawDatabase raw(dir_.path(), /*read_only=*/false);
      ASSERT_TRUE(raw.ok());
      ASSERT_NE(raw.family("audit"), nullptr) << "no audit column family";
      edit(raw.db(), raw.family("audit"));
    }
    Open();
  }

  // Tampers, reopens and verifies the chain.
  template <typename Edit>
  AuditVerification TamperThenVerify(Edit edit) {
    TamperWithRawDatabase(edit);
    auto verified = VerifyAudit(*store_);
    EXPECT_TRUE(verified.ok()) << verified.status();
    return verified.ok() ? *verified : AuditVerification();
  }

  // Reads record `seq`, changes it and writes it at the key of `to`.
  template <typename Change>
  static void Rewrite(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                      uint64_t seq, uint64_t to, Change change) {
    std::string value;
    ASSERT_TRUE(db.Get(rocksdb::ReadOptions(), cf, Key(seq), &value).ok());
    AuditRecord record;
    ASSERT_TRUE(record.ParseFromString(value));
    change(record);
    ASSERT_TRUE(
        db.Put(rocksdb::WriteOptions(), cf, Key(to), record.SerializeAsString())
            .ok());
  }

  static std::string Key(uint64_t seq) {
    std::string key(8, '\0');
    for (int i = 7; i >= 0; --i, seq >>= 8) {
      key[i] = static_cast<char>(seq & 0xff);
    }
    return key;
  }
};

TEST_F(AuditTrailTest, EveryMutationAppendsItsRecordInOrder) {
  const StoredReferral a = Submit("a");
  const StoredReferral b =
      Submit("b", {.principal = "agency:test-school", .on_behalf_of = "u-17"});
  clock_.Advance(absl::Minutes(1));
  const std::vector<StoredReferral> claimed = Claim(2);
  ASSERT_EQ(claimed.size(), 2u);
  const StoredReferral& claimed_a =
      claimed[0].referral_id() == a.referral_id() ? claimed[0] : claimed[1];
  const StoredReferral& claimed_b =
      claimed[0].referral_id() == a.referral_id() ? claimed[1] : claimed[0];

  ASSERT_TRUE(
      CommitNow(*store_, ExtendCommand{.referral_id = a.referral_id(),
                                       .lease_token = claimed_a.lease().token(),
                                       .lease = absl::Minutes(30),
                                       .actor = "triage:worker-1"})
          .ok());
  ASSERT_TRUE(CommitNow(*store_,
                        ReleaseCommand{.referral_id = b.referral_id(),
                                       .lease_token = claimed_b.lease().token(),
                                       .reason = "not mine",
                                       .actor = "triage:worker-1"})
                  .ok());
  ASSERT_TRUE(
      CommitNow(*store_, RequeueCommand{.referral_id = b.referral_id(),
                                        .actor = "admin:ops-1",
                                        .audit = {.principal = "admin",
                                                  .on_behalf_of = "ops-1"}})
          .ok());
  ASSERT_TRUE(Decide(claimed_a).ok());
  ASSERT_TRUE(
      CommitNow(*store_, AcknowledgeCommand{.referral_id = a.referral_id(),
                                            .agency_id = "test-school",
                                            .actor = "agency:test-school"})
          .ok());
  ASSERT_EQ(Claim(1).size(), 1u);  // b again
  clock_.Advance(absl::Hours(1));
  ASSERT_EQ(*CommitNow(*store_, ExpireLeasesCommand{}), 1);
  auto read_at =
      CommitNow(*store_, RecordAccessCommand{.principal = "agency:test-school",
                                             .action = "status_read",
                                             .referral_id = a.referral_id(),
                                             .result = "OK"});
  ASSERT_TRUE(read_at.ok()) << read_at.status();
  EXPECT_EQ(*read_at, clock_.Now());
  // An idle reaper pass and an empty claim touch no referral: no records.
  ASSERT_EQ(*CommitNow(*store_, ExpireLeasesCommand{}), 0);

  const std::vector<AuditRecord> records = All();
  EXPECT_THAT(Actions(records),
              ElementsAre("submit", "submit", "claim", "claim", "extend",
                          "release", "requeue", "decide", "acknowledge_outcome",
                          "claim", "lease_expired", "status_read"));
  std::string previous;
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].seq(), i + 1);
    EXPECT_EQ(records[i].result(), "OK") << i;
    EXPECT_EQ(records[i].previous_hash(), previous) << i;
    EXPECT_EQ(records[i].hash().size(), 32u);
    previous = records[i].hash();
  }
  EXPECT_EQ(records[0].principal(), "agency:test-school");  // from actor
  EXPECT_EQ(records[0].referral_id(), a.referral_id());
  EXPECT_EQ(records[1].on_behalf_of(), "u-17");
  EXPECT_EQ(records[6].principal(), "admin");
  EXPECT_EQ(records[6].on_behalf_of(), "ops-1");
  EXPECT_EQ(records[6].referral_id(), b.referral_id());
  EXPECT_EQ(records[10].principal(), "broker");
  EXPECT_EQ(records[10].referral_id(), b.referral_id());
  EXPECT_EQ(records[11].at_us(), absl::ToUnixMicros(*read_at));

  auto verified = VerifyAudit(*store_);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_TRUE(verified->intact) << verified->problem;
  EXPECT_EQ(verified->records_checked, records.size());
}

TEST_F(AuditTrailTest, FailedMutationIsRecordedWithItsResult) {
  const StoredReferral a = Submit("a");
  const std::vector<StoredReferral> claimed = Claim(1);
  ASSERT_EQ(claimed.size(), 1u);
  auto extended =
      CommitNow(*store_, ExtendCommand{.referral_id = a.referral_id(),
                                       .lease_token = "not-the-token",
                                       .lease = absl::Hours(5),
                                       .actor = "triage:worker-2"});
  EXPECT_EQ(extended.status().code(), absl::StatusCode::kFailedPrecondition);
  // Its own change was rolled back.
  auto record = store_->GetReferral(a.referral_id());
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->lease().expires_at_us(),
            claimed[0].lease().expires_at_us());
  // A malformed id is not copied into the trail.
  auto released =
      CommitNow(*store_, ReleaseCommand{.referral_id = "Jane Doe",
                                        .lease_token = "x",
                                        .actor = "triage:worker-2"});
  EXPECT_FALSE(released.ok());

  const std::vector<AuditRecord> records = All();
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[2].action(), "extend");
  EXPECT_EQ(records[2].referral_id(), a.referral_id());
  EXPECT_EQ(records[2].principal(), "triage:worker-2");
  EXPECT_EQ(records[2].result(), "FAILED_PRECONDITION");
  EXPECT_EQ(records[3].action(), "release");
  EXPECT_EQ(records[3].referral_id(), "");
  EXPECT_EQ(records[3].result(), "INVALID_ARGUMENT");
  auto verified = VerifyAudit(*store_);
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->intact) << verified->problem;
}

TEST_F(AuditTrailTest, ARecordedReadNamesItsAction) {
  auto refused = CommitNow(
      *store_,
      RecordAccessCommand{.principal = "agency:test-school", .result = "OK"});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(All().empty());
}

TEST_F(AuditTrailTest, RecordsCommitOrFailWithTheirChange) {
  // The audit record rides in the mutation's own write: when that write
  // fails, neither is stored and the chain does not move on.
  faults_->FailNextLogAppend(Failure::kIoError);
  auto failed = CommitNow(*store_, MakeSubmit("a", clock_.Now()));
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(All().empty());
  const StoredReferral a = Submit("a");
  const std::vector<AuditRecord> records = All();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].seq(), 1u);
  EXPECT_EQ(records[0].referral_id(), a.referral_id());
  EXPECT_EQ(records[0].previous_hash(), "");
}

TEST_F(AuditTrailTest, SurvivesReopenAndTheChainContinues) {
  Submit("a");
  Submit("b");
  Close();
  Open();
  clock_.Advance(absl::Hours(2));
  Submit("c");
  const std::vector<AuditRecord> records = All();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].seq(), 3u);
  EXPECT_EQ(records[2].previous_hash(), records[1].hash());
  auto verified = VerifyAudit(*store_);
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->intact) << verified->problem;
  EXPECT_EQ(verified->records_checked, 3u);

  // Export by time range.
  auto late =
      ExportAudit(*store_, clock_.Now() - absl::Minutes(1), clock_.Now(), 10);
  ASSERT_TRUE(late.ok());
  ASSERT_EQ(late->size(), 1u);
  EXPECT_EQ((*late)[0].seq(), 3u);
  auto limited =
      ExportAudit(*store_, absl::InfinitePast(), absl::InfiniteFuture(), 2);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->size(), 2u);
  EXPECT_EQ(
      ExportAudit(*store_, absl::InfinitePast(), absl::InfiniteFuture(), 0)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(AuditTrailTest, VerifyFindsAnEditedRecord) {
  for (const char* key : {"a", "b", "c", "d"}) Submit(key);
  const AuditVerification verified =
      TamperThenVerify([](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf) {
        Rewrite(db, cf, 2, 2, [](AuditRecord& record) {
          record.set_principal("agency:someone-else");
        });
      });
  EXPECT_FALSE(verified.intact);
  EXPECT_EQ(verified.first_bad_seq, 2u);
  EXPECT_EQ(verified.records_checked, 1u);
  EXPECT_FALSE(verified.problem.empty());
}

TEST_F(AuditTrailTest, VerifyFindsADeletedRecord) {
  for (const char* key : {"a", "b", "c", "d"}) Submit(key);
  const AuditVerification verified =
      TamperThenVerify([](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf) {
        ASSERT_TRUE(db.Delete(rocksdb::WriteOptions(), cf, Key(3)).ok());
      });
  EXPECT_FALSE(verified.intact);
  EXPECT_EQ(verified.first_bad_seq, 3u);
  EXPECT_EQ(verified.records_checked, 2u);
}

TEST_F(AuditTrailTest, VerifyFindsARenumberedDeletion) {
  for (const char* key : {"a", "b", "c", "d"}) Submit(key);
  // Record 2 removed and 3 moved into its place: no gap, but 3's
  // previous_hash no longer matches record 1.
  const AuditVerification verified =
      TamperThenVerify([](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf) {
        Rewrite(db, cf, 3, 2, [](AuditRecord& record) { record.set_seq(2); });
        ASSERT_TRUE(db.Delete(rocksdb::WriteOptions(), cf, Key(3)).ok());
      });
  EXPECT_FALSE(verified.intact);
  EXPECT_EQ(verified.first_bad_seq, 2u);
}

}  // namespace
}  // namespace referral::storage::testing
