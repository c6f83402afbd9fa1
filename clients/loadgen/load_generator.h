// The load generator behind referral_loadgen: submits fictitious referrals
// with many requests in flight through gRPC's callback API (no thread per
// request), then drains them through ClaimReferrals and RecordDecision as
// triage would, measuring every call.
//
// The drain decides only referrals this run submitted. Anything else it
// claims is held until the drain ends and then released once with a
// reason, which still costs its owner one delivery attempt: run it against
// a broker (or queue) kept for load testing.
#ifndef REFERRAL_CLIENTS_LOAD_GENERATOR_H_
#define REFERRAL_CLIENTS_LOAD_GENERATOR_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "latency_stats.h"
#include "load_report.h"
#include "referral/v1/referral.pb.h"

namespace referral::clients {

// The referral to submit as number `index` (0-based). Called concurrently.
using ReferralSource = std::function<referral::v1::Referral(int64_t index)>;

// Runs the whole load: submit, then (if options.drain) drain. Calls are
// spread over `channels` round-robin. Never throws; failures are counted in
// the report.
LoadReport RunLoad(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                   const LoadOptions& options, const ReferralSource& source);

// End to end, one referral at a time, after the load: from the start of
// SubmitReferral until ClaimReferrals (max 1, on the queue it was routed
// to) hands it out, then decided so nothing is left behind. The latency is
// submit-to-claimed; failed counts probes that never got there (or claimed
// someone else's referral, which is then released). Run it on a drained
// queue. Keys are options.key_prefix + "e2e-" + i.
LatencySummary MeasureEndToEnd(const std::shared_ptr<grpc::Channel>& channel,
                               const LoadOptions& options,
                               const ReferralSource& source, int64_t probes);

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_LOAD_GENERATOR_H_
