// referral_cli's commands for partner agencies: submit a referral, follow
// it, read and acknowledge the outcomes.
#include <string>
#include <vector>

#include "cli_command_kit.h"
#include "referral_json.h"

namespace referral::clients {
namespace {

namespace v1 = ::referral::v1;

using Args = std::vector<std::string>;

int RunSubmit(const CliEnv& env, const Args& args) {
  absl::StatusOr<v1::Referral> referral = LoadReferralJson(args[0]);
  if (!referral.ok()) {
    return UsageError(env, "submit", referral.status().message());
  }
  v1::SubmitReferralRequest request;
  *request.mutable_referral() = *std::move(referral);
  if (!env.options.agency.empty()) {
    request.mutable_referral()->mutable_referrer()->set_agency_id(
        env.options.agency);
  }
  const bool generated = env.options.idempotency_key.empty();
  const std::string key =
      generated ? NewIdempotencyKey() : env.options.idempotency_key;
  request.set_idempotency_key(key);
  if (generated) {
    // On stderr so that --json output stays a single JSON document.
    *env.err << kProgram << " submit: no --idempotency_key given; using " << key
             << "\n";
  }
  const absl::StatusOr<v1::SubmitReferralResponse> response =
      Client(env).SubmitReferral(request, Unary(env));
  const int code = ReportLine(env, "submit", response, [&](const auto& r) {
    return SubmitLine(r, key);
  });
  if (!response.ok()) {
    // After a timeout or a lost connection the referral may or may not be
    // stored: resubmitting with the same key is safe either way.
    *env.err << kProgram << " submit: to retry safely, resubmit with "
             << "--idempotency_key=" << key << "\n";
  }
  return code;
}

int RunStatus(const CliEnv& env, const Args& args) {
  v1::GetReferralStatusRequest request;
  request.set_referral_id(args[0]);
  return ReportLine(env, "status",
                    Client(env).GetReferralStatus(request, Unary(env)),
                    StatusLines);
}

int RunOutcomes(const CliEnv& env, const Args& args) {
  v1::ListOutcomesRequest request;
  request.set_agency(env.options.agency);
  request.set_page_size(env.options.page_size);
  request.set_page_token(env.options.page_token);
  return Report(env, "outcomes", Client(env).ListOutcomes(request, Unary(env)),
                [&](const v1::ListOutcomesResponse& r) {
                  PrintPage(env, r.outcomes(), OutcomeLine, "outcomes",
                            r.next_page_token());
                });
}

int RunAck(const CliEnv& env, const Args& args) {
  v1::AcknowledgeOutcomeRequest request;
  request.set_referral_id(args[0]);
  return ReportLine(env, "ack",
                    Client(env).AcknowledgeOutcome(request, Unary(env)),
                    [&](const auto& r) { return AckLine(args[0], r); });
}

}  // namespace

const std::vector<CommandSpec>& AgencyCommands() {
  static const auto* const kCommands = new std::vector<CommandSpec>{
      CommandSpec("submit", "agencies", "FILE|-",
                  "submit a referral written as protobuf JSON "
                  "(referral.v1.Referral); '-' reads stdin",
                  {"idempotency_key", "agency"}, {}, 1, 1, RunSubmit),
      CommandSpec("status", "agencies", "REFERRAL_ID",
                  "state, history and stage times of a referral", {}, {}, 1, 1,
                  RunStatus),
      CommandSpec("outcomes", "agencies", "",
                  "decisions on the agency's referrals not yet acknowledged",
                  {"agency", "page_size", "page_token"}, {"agency"}, 0, 0,
                  RunOutcomes),
      CommandSpec("ack", "agencies", "REFERRAL_ID",
                  "acknowledge that the referrer has received the outcome", {},
                  {}, 1, 1, RunAck),
  };
  return *kCommands;
}

}  // namespace referral::clients
