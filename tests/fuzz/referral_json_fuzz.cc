// Fuzzes the CLI's JSON referral parser (clients/json/referral_json.h), which
// reads files agencies prepare by hand: arbitrary bytes in.
//
// Properties, beyond "never crash, no memory error, no UB" (the parser
// promises not to recurse on the input, so deep nesting must not overflow
// the stack either):
// - a rejection is INVALID_ARGUMENT;
// - a referral it accepts, printed back as protobuf JSON (what `referral_cli`
//   users get from protobuf's own printer), parses again to the same
//   referral: the parser accepts the canonical form of everything it accepts.
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "referral_json.h"

namespace {

void Fail(const char* what) {
  // Only the property: the input is in the crash file, never in the log.
  std::fprintf(stderr, "referral_json_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<referral::v1::Referral> parsed =
      referral::clients::ParseReferralJson(json);
  if (!parsed.ok()) {
    if (parsed.status().code() != absl::StatusCode::kInvalidArgument) {
      Fail("rejection is not INVALID_ARGUMENT");
    }
    return 0;
  }

  std::string printed;
  if (!google::protobuf::util::MessageToJsonString(*parsed, &printed).ok()) {
    Fail("protobuf cannot print an accepted referral as JSON");
  }
  absl::StatusOr<referral::v1::Referral> again =
      referral::clients::ParseReferralJson(printed);
  if (!again.ok()) Fail("protobuf's JSON of an accepted referral is rejected");
  if (!google::protobuf::util::MessageDifferencer::Equals(*parsed, *again)) {
    Fail("protobuf's JSON of an accepted referral parses to another referral");
  }
  return 0;
}
