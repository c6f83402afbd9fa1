// Loading referrals from protobuf JSON: good input parses; every kind of bad
// input gives an error naming the position and field and never the
// content; arbitrary bytes never crash the parser.
#include "referral_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "referral/v1/broker.pb.h"
#include "support/broker_process.h"

namespace referral::clients {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Every string value holds the word "Secret" so that tests can check that
// no error message ever quotes a value.
constexpr char kGood[] = R"({
  "referrer": {
    "agency_type": "AGENCY_TYPE_POLICE",
    "agency_id": "cambs-police",
    "name": "Secret Officer"
  },
  "children": [
    {
      "given_name": "Secret",
      "family_name": "Secretson",
      "date_of_birth": {"year": 2015, "month": 3, "day": 9},
      "sex": "SEX_FEMALE",
      "nhs_number": "999 000 0018",
      "address": {"lines": ["1 Secret Road"], "postcode": "PE1 2AB"}
    }
  ],
  "concerns": ["CONCERN_CATEGORY_DOMESTIC_ABUSE", "CONCERN_CATEGORY_NEGLECT"],
  "immediate_risk": false,
  "description": "Secret description \u00e9 \ud83d\ude00",
  "childVoice": {"words": "Secret words"},
  "consent": {"status": "CONSENT_STATUS_NOT_SOUGHT",
              "reason_shared_without_consent": "Secret reason"},
  "cin_factor_codes": ["3B"]
})";

std::string ErrorOf(absl::string_view json) {
  absl::StatusOr<v1::Referral> r = ParseReferralJson(json);
  EXPECT_FALSE(r.ok()) << "parsed unexpectedly: " << json;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr("Secret")));
  return std::string(r.status().message());
}

TEST(ParseReferralJsonTest, ParsesAGoodReferral) {
  absl::StatusOr<v1::Referral> r = ParseReferralJson(kGood);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->referrer().agency_type(), v1::AGENCY_TYPE_POLICE);
  EXPECT_EQ(r->referrer().agency_id(), "cambs-police");
  ASSERT_EQ(r->children_size(), 1);
  EXPECT_EQ(r->children(0).date_of_birth().year(), 2015);
  EXPECT_EQ(r->children(0).sex(), v1::SEX_FEMALE);
  EXPECT_EQ(r->children(0).address().postcode(), "PE1 2AB");
  ASSERT_EQ(r->concerns_size(), 2);
  EXPECT_EQ(r->concerns(1), v1::CONCERN_CATEGORY_NEGLECT);
  // lowerCamelCase JSON names work as well as proto names.
  EXPECT_EQ(r->child_voice().words(), "Secret words");
  EXPECT_EQ(r->description(), "Secret description \u00e9 \U0001F600");
}

TEST(ParseReferralJsonTest, AcceptsByteOrderMarkNullsAndNumericForms) {
  const std::string json = absl::StrCat(
      "\xEF\xBB\xBF",
      R"({"referrer": null, "concerns": [1, "CONCERN_CATEGORY_NEGLECT"],
       "children": [{"date_of_birth": {"year": "2015", "month": 3.0, "day": 1e1}}]})");
  absl::StatusOr<v1::Referral> r = ParseReferralJson(json);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->has_referrer());
  EXPECT_EQ(r->concerns(0), v1::CONCERN_CATEGORY_NEGLECT);
  EXPECT_EQ(r->children(0).date_of_birth().year(), 2015);
  EXPECT_EQ(r->children(0).date_of_birth().month(), 3);
  EXPECT_EQ(r->children(0).date_of_birth().day(), 10);
}

TEST(ParseReferralJsonTest, EmptyObjectIsAnEmptyReferral) {
  absl::StatusOr<v1::Referral> r = ParseReferralJson("  {}\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ByteSizeLong(), 0u);
}

TEST(ParseReferralJsonTest, SyntaxErrorsGiveLineAndColumn) {
  EXPECT_EQ(ErrorOf(""),
            "line 1, column 1: the input is empty; expected a "
            "JSON object");
  EXPECT_THAT(ErrorOf("[1, 2]"),
              AllOf(StartsWith("line 1, column 1: "),
                    HasSubstr("expected a JSON object ('{') holding a "
                              "referral.v1.Referral")));
  // The missing comma is reported where the next field starts.
  EXPECT_EQ(ErrorOf("{\n  \"description\": \"Secret\"\n  \"background\": "
                    "\"Secret\"\n}"),
            "line 3, column 3: expected ',' or '}' after a field's value, "
            "found '\"'");
  EXPECT_THAT(ErrorOf(R"({"description": "Secret")"),
              HasSubstr("unexpected end of input; expected ',' or '}'"));
  EXPECT_THAT(ErrorOf(R"({"description": "Secret)"),
              AllOf(StartsWith("line 1, column 17: "),
                    HasSubstr("description: string is not closed")));
  EXPECT_THAT(ErrorOf(R"({"concerns": [1, 2,]})"),
              HasSubstr("concerns: trailing comma before ']'"));
  EXPECT_THAT(ErrorOf(R"({"description": "a",})"),
              HasSubstr("trailing comma before '}'"));
  EXPECT_THAT(ErrorOf(R"({description: "Secret"})"),
              HasSubstr("expected a field name in double quotes, found a "
                        "word without quotes"));
  EXPECT_THAT(ErrorOf(R"({"description": 'Secret'})"),
              HasSubstr("strings need double quotes"));
  EXPECT_THAT(ErrorOf(R"({"description" "Secret"})"),
              HasSubstr("expected ':' after a field name"));
  EXPECT_THAT(ErrorOf(R"({"description": "Secret"} Secret)"),
              HasSubstr("unexpected content after the end of the JSON "
                        "object"));
  EXPECT_THAT(ErrorOf(R"({"immediate_risk": tru})"),
              HasSubstr("immediate_risk: expected a value"));
  EXPECT_THAT(ErrorOf(R"({"children": [{"date_of_birth": {"year": 01}}]})"),
              HasSubstr("expected ',' or '}'"));
  EXPECT_THAT(ErrorOf(R"({"children": [{"date_of_birth": {"year": -}}]})"),
              HasSubstr("children[0].date_of_birth.year: malformed number"));
}

TEST(ParseReferralJsonTest, ColumnsCountCharactersNotBytes) {
  // "é" is two bytes but one column.
  EXPECT_THAT(ErrorOf("{\"description\": \"\xC3\xA9\" x}"),
              StartsWith("line 1, column 21: "));
}

TEST(ParseReferralJsonTest, StringProblemsAreReportedWithoutContent) {
  EXPECT_THAT(ErrorOf(R"({"description": "Secret \q"})"),
              HasSubstr("description: invalid escape sequence"));
  EXPECT_THAT(ErrorOf(R"({"description": "Secret \u12"})"),
              HasSubstr("four hexadecimal digits"));
  EXPECT_THAT(ErrorOf(R"({"description": "Secret \ud800 x"})"),
              HasSubstr("unpaired high surrogate"));
  EXPECT_THAT(ErrorOf(R"({"description": "Secret \udc00"})"),
              HasSubstr("unpaired low surrogate"));
  EXPECT_THAT(ErrorOf("{\"description\": \"Secret \xff\"}"),
              HasSubstr("description: invalid UTF-8 in a string"));
  EXPECT_THAT(ErrorOf("{\"description\": \"Secret \xC0\xAF\"}"),  // overlong
              HasSubstr("invalid UTF-8"));
  EXPECT_THAT(ErrorOf("{\"description\": \"Secret \xED\xA0\x80\"}"),
              HasSubstr("invalid UTF-8"));  // an encoded surrogate
  EXPECT_THAT(ErrorOf("{\"description\": \"Secret\nline\"}"),
              HasSubstr("control character in a string"));
}

TEST(ParseReferralJsonTest, UnknownFieldsNameTheFieldAndSuggest) {
  EXPECT_EQ(ErrorOf(R"({"descripton": "Secret"})"),
            "line 1, column 2: unknown field \"descripton\" (a "
            "referral.v1.Referral has no field of that name; did you mean "
            "\"description\"?)");
  EXPECT_THAT(
      ErrorOf(R"({"children": [{}, {"nhs_numbr": "Secret"}]})"),
      AllOf(HasSubstr("children[1]: unknown field \"nhs_numbr\""),
            HasSubstr("referral.v1.Child"), HasSubstr("\"nhs_number\"")));
  EXPECT_THAT(ErrorOf(R"({"referrer": {"AgencyID": "x"}})"),
              HasSubstr("did you mean \"agency_id\"?"));
  // Nothing close: no suggestion.
  EXPECT_THAT(
      ErrorOf(R"({"zzzzzzzzzzzzzzzz": 1})"),
      AllOf(HasSubstr("unknown field"), Not(HasSubstr("did you mean"))));
  // A long or strange key is shortened and escaped.
  const std::string long_key(500, 'k');
  const std::string message = ErrorOf(absl::StrCat("{\"", long_key, "\": 1}"));
  EXPECT_LT(message.size(), 250u);
  EXPECT_THAT(ErrorOf("{\"a\\u0007b\": 1}"), HasSubstr("\"a\\x07"));
}

TEST(ParseReferralJsonTest, FieldGivenTwiceIsAnError) {
  EXPECT_THAT(ErrorOf(R"({"description": "a", "description": "b"})"),
              HasSubstr("description: field given more than once"));
  // Also when spelled once by proto name and once by JSON name.
  EXPECT_THAT(ErrorOf(R"({"child_voice": {}, "childVoice": {}})"),
              HasSubstr("child_voice: field given more than once"));
}

TEST(ParseReferralJsonTest, WrongEnumNamesGetAHintButNoEcho) {
  EXPECT_EQ(ErrorOf(R"({"children": [{"sex": "female"}]})"),
            "line 1, column 23: children[0].sex: unknown Sex name; did you "
            "mean SEX_FEMALE?");
  EXPECT_THAT(ErrorOf(R"({"children": [{"sex": "male"}]})"),
              HasSubstr("did you mean SEX_MALE?"));
  EXPECT_THAT(ErrorOf(R"({"concerns": ["CONCERN_CATEGORY_NEGLEKT"]})"),
              HasSubstr("concerns[0]: unknown ConcernCategory name; did you "
                        "mean CONCERN_CATEGORY_NEGLECT?"));
  EXPECT_THAT(ErrorOf(R"({"referrer": {"agency_type": "Secret"}})"),
              AllOf(HasSubstr("referrer.agency_type: unknown AgencyType name"),
                    HasSubstr("referral.v1.AgencyType")));
  EXPECT_THAT(ErrorOf(R"({"consent": {"status": "Secret"}})"),
              HasSubstr("expected one of CONSENT_STATUS_UNSPECIFIED, "
                        "CONSENT_STATUS_OBTAINED"));
  EXPECT_THAT(ErrorOf(R"({"concerns": [1.5]})"),
              HasSubstr("concerns[0]: expected a ConcernCategory name"));
}

TEST(ParseReferralJsonTest, WrongValueTypesSayWhatWasExpected) {
  EXPECT_THAT(ErrorOf(R"({"immediate_risk": "Secret"})"),
              HasSubstr("immediate_risk: expected true or false, found a "
                        "string"));
  EXPECT_THAT(ErrorOf(R"({"immediate_risk": 1})"),
              HasSubstr("expected true or false, found a number"));
  EXPECT_THAT(ErrorOf(R"({"description": {"x": "Secret"}})"),
              HasSubstr("description: expected a string, found an object"));
  EXPECT_THAT(ErrorOf(R"({"description": ["Secret"]})"),
              HasSubstr("description: expected a string, found an array"));
  EXPECT_THAT(ErrorOf(R"({"referrer": "Secret"})"),
              HasSubstr("referrer: expected an object, found a string"));
  EXPECT_THAT(ErrorOf(R"({"children": {"given_name": "Secret"}})"),
              HasSubstr("children: expected an array, found an object"));
  EXPECT_THAT(ErrorOf(R"({"children": [["Secret"]]})"),
              HasSubstr("children[0]: expected an object, found an array"));
  EXPECT_THAT(ErrorOf(R"({"children": [{}, null]})"),
              HasSubstr("children[1]: null is not allowed in a list"));
  EXPECT_THAT(ErrorOf(R"({"cin_factor_codes": "3B"})"),
              HasSubstr("cin_factor_codes: expected an array, found a "
                        "string"));
  EXPECT_THAT(ErrorOf(R"({"children": [{"date_of_birth": "2015-03-09"}]})"),
              HasSubstr("children[0].date_of_birth: expected an object"));
  EXPECT_THAT(ErrorOf(R"({"children": [{"date_of_birth": {"year": 2015.5}}]})"),
              HasSubstr("year: expected a whole number that fits a int32"));
  EXPECT_THAT(
      ErrorOf(R"({"children": [{"date_of_birth": {"year": 99999999999}}]})"),
      HasSubstr("expected a whole number"));
  EXPECT_THAT(ErrorOf(R"({"children": [{"date_of_birth": {"year": "1e3"}}]})"),
              HasSubstr("expected a whole number"));
  EXPECT_THAT(ErrorOf(R"({"children": [{"date_of_birth": {"year": 1e400}}]})"),
              HasSubstr("expected a whole number"));
  EXPECT_THAT(ErrorOf(R"({"children": [{"given_name": 12}]})"),
              HasSubstr("children[0].given_name: expected a string, found a "
                        "number"));
}

TEST(ParseReferralJsonTest, DepthAndSizeAreBounded) {
  // Deep nesting inside a field is refused before anything recurses.
  std::string deep = "{\"children\": [";
  for (int i = 0; i < 100000; ++i) deep += "[";
  EXPECT_THAT(ErrorOf(deep), HasSubstr("expected an object, found an array"));

  std::string nested = "{";
  for (int i = 0; i < 200; ++i) nested += "\"referrer\": {";
  EXPECT_THAT(ErrorOf(nested), HasSubstr("unknown field \"referrer\""));

  std::string huge = "{\"description\": \"";
  huge.append(kMaxJsonBytes, 'a');
  huge += "\"}";
  EXPECT_THAT(ErrorOf(huge), HasSubstr("larger than 4 MiB"));
}

// The contract's limits (limits.proto options on referral.proto and
// broker.proto) are checked before anything reaches the broker, with the
// place and the field but not the value.
TEST(ParseReferralJsonTest, RefusesWhatIsOverTheContractsLimits) {
  std::string secret;
  while (secret.size() < 20000) secret += "Secret";
  secret.resize(20000);
  const std::string at_limit =
      absl::StrCat("{\"description\": \"", secret, "\"}");
  EXPECT_TRUE(ParseReferralJson(at_limit).ok());
  EXPECT_EQ(ErrorOf(absl::StrCat("{\"description\": \"", secret, "S\"}")),
            "line 1, column 17: description: must be at most 20000 bytes");
  // A list over its count, at the first item too many.
  std::string children = "{\"children\": [{}";
  for (int i = 1; i < 11; ++i) children += ", {}";
  EXPECT_EQ(ErrorOf(children + "]}"),
            "line 1, column 55: children: must hold at most 10 items");
  // Each item of a list of strings.
  EXPECT_EQ(ErrorOf(R"({"cin_factor_codes": ["3B", "Secret"]})"),
            "line 1, column 29: cin_factor_codes[1]: must be at most 4 bytes");
  // The service's messages too.
  v1::SubmitReferralRequest request;
  const absl::Status key = ParseJsonMessage(
      absl::StrCat("{\"idempotency_key\": \"", std::string(129, 'k'), "\"}"),
      &request);
  EXPECT_EQ(key.message(),
            "line 1, column 21: idempotency_key: must be at most 128 bytes");
}

TEST(ParseReferralJsonTest, WorksForOtherMessagesToo) {
  v1::SubmitReferralRequest request;
  ASSERT_TRUE(ParseJsonMessage(R"({"idempotencyKey": "k1",
      "referral": {"description": "x"}})",
                               &request)
                  .ok());
  EXPECT_EQ(request.idempotency_key(), "k1");
  EXPECT_EQ(request.referral().description(), "x");
  // Well-known types (a Timestamp is written as a string) are left to
  // protobuf, whose own error is withheld.
  v1::SubmitReferralResponse response;
  ASSERT_TRUE(
      ParseJsonMessage(R"({"received_at": "2026-01-05T09:30:00Z"})", &response)
          .ok());
  EXPECT_EQ(response.received_at().seconds(), 1767605400);
  const absl::Status bad =
      ParseJsonMessage(R"({"received_at": "Secret"})", &response);
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.message()), Not(HasSubstr("Secret")));
}

// Byte-level mutations of a good referral: whatever happens, the parser
// returns (ok or an error) and never quotes content.
TEST(ParseReferralJsonTest, SurvivesRandomMutations) {
  std::mt19937 rng(20260105);
  const std::string good = kGood;
  for (int i = 0; i < 20000; ++i) {
    std::string input = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !input.empty(); ++e) {
      const size_t at = rng() % input.size();
      switch (rng() % 4) {
        case 0:
          input[at] = static_cast<char>(rng() % 256);
          break;
        case 1:
          input.erase(at, 1 + rng() % 8);
          break;
        case 2:
          input.insert(at, 1, "{}[]\",:\\0e-tnu"[rng() % 15]);
          break;
        case 3:
          input.resize(at);
          break;
      }
    }
    absl::StatusOr<v1::Referral> r = ParseReferralJson(input);
    if (!r.ok()) {
      EXPECT_THAT(std::string(r.status().message()),
                  AllOf(StartsWith("line "), Not(HasSubstr("Secret"))))
          << "input: " << input;
    }
  }
}

TEST(ParseReferralJsonTest, SurvivesRandomBytes) {
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; ++i) {
    std::string input(rng() % 64, '\0');
    for (char& c : input)
      c = "{}[]\",:0123456789-.eE truefalsnl\\u"[rng() % 35];
    (void)ParseReferralJson(input);
    for (char& c : input) c = static_cast<char>(rng() % 256);
    (void)ParseReferralJson(input);
  }
}

TEST(LoadReferralJsonTest, ErrorsNameTheFile) {
  referral::testing::TempDir tmp;
  const std::string path = tmp.Sub("bad.json");
  std::ofstream(path) << "{\n  \"sex\": \"Secret\"\n}\n";
  absl::StatusOr<v1::Referral> r = LoadReferralJson(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            absl::StrCat(path,
                         ": line 2, column 3: unknown field \"sex\" (a "
                         "referral.v1.Referral has no field of that name)"));

  r = LoadReferralJson(tmp.Sub("missing.json"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()),
              AllOf(HasSubstr("cannot open"), HasSubstr("missing.json"),
                    HasSubstr("No such file")));

  r = LoadReferralJson(tmp.path());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("is a directory"));

  const std::string good_path = tmp.Sub("good.json");
  std::ofstream(good_path) << kGood;
  r = LoadReferralJson(good_path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->referrer().agency_id(), "cambs-police");
}

// The examples shipped in clients/examples must always load.
TEST(LoadReferralJsonTest, ShippedExamplesParse) {
  const std::filesystem::path dir =
      std::filesystem::path(REFERRAL_SOURCE_DIR) / "clients" / "examples";
  int parsed = 0;
  if (std::filesystem::exists(dir)) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() != ".json") continue;
      absl::StatusOr<v1::Referral> r = LoadReferralJson(entry.path().string());
      EXPECT_TRUE(r.ok()) << r.status();
      ++parsed;
    }
  }
  if (parsed == 0) GTEST_SKIP() << "no examples in " << dir;
}

}  // namespace
}  // namespace referral::clients
