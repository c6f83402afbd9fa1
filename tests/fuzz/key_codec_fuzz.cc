// Fuzzes the store's key codec (storage/src/key_codec.h). Keys come back
// from RocksDB, where corruption or a bug elsewhere can put any bytes, so
// every decoder takes arbitrary bytes.
//
// Properties, beyond "never crash, no memory error, no UB":
// - decoding is exact: whatever a decoder accepts encodes back to the very
//   same bytes (no two keys decode alike, no trailing bytes ignored);
// - encode then decode gives back the value, for values the store writes
//   (names as the server validates them, any integers and times);
// - bytewise key order is the order the store reads in: field by field,
//   name first (ready, lease keys);
// - referral ids and hex tokens round-trip.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "key_codec.h"

namespace {

namespace keys = referral::storage::keys;

void Fail(const char* what) {
  std::fprintf(stderr, "key_codec_fuzz: %s\n", what);
  std::abort();
}

// Decoding `bytes`, when it succeeds, must give a value that encodes back to
// exactly `bytes`.
template <typename Decode, typename Encode>
void CheckExact(std::string_view bytes, Decode decode, Encode encode,
                const char* what) {
  auto decoded = decode(bytes);
  if (decoded && encode(*decoded) != bytes) Fail(what);
}

template <typename T, typename Decode, typename Encode>
void CheckRoundTrip(const T& value, Decode decode, Encode encode,
                    const char* what) {
  std::optional<T> back = decode(encode(value));
  if (!back || !(*back == value)) Fail(what);
}

// A name as the server validates them: [a-z0-9-]{1,64}.
std::string ValidName(FuzzedDataProvider& in) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789-";
  const size_t length = in.ConsumeIntegralInRange<size_t>(1, 64);
  std::string name;
  for (size_t i = 0; i < length; ++i) {
    name.push_back(
        kAlphabet[in.ConsumeIntegralInRange<size_t>(0, sizeof(kAlphabet) - 2)]);
  }
  return name;
}

// A child match key: any non-empty bytes without a 0 byte.
std::string MatchKey(FuzzedDataProvider& in) {
  std::string key = in.ConsumeRandomLengthString(80);
  for (char& c : key) {
    if (c == '\0') c = 'x';
  }
  return key.empty() ? "nhs:9990000018" : key;
}

void DecodeArbitraryBytes(std::string_view bytes) {
  CheckExact(bytes, keys::DecodeReferralKey, keys::ReferralKey, "referral key");
  CheckExact(bytes, keys::DecodeReadyKey, keys::EncodeReadyKey, "ready key");
  CheckExact(bytes, keys::DecodeArrivalKey, keys::EncodeArrivalKey,
             "arrival key");
  CheckExact(bytes, keys::DecodeLeaseKey, keys::EncodeLeaseKey, "lease key");
  CheckExact(bytes, keys::DecodeDeadLetterKey, keys::EncodeDeadLetterKey,
             "dead letter key");
  CheckExact(bytes, keys::DecodeOutcomeKey, keys::EncodeOutcomeKey,
             "outcome key");
  CheckExact(bytes, keys::DecodeDecisionStatKey, keys::EncodeDecisionStatKey,
             "decision stat key");
  CheckExact(bytes, keys::DecodeNoticeKey, keys::EncodeNoticeKey, "notice key");
  CheckExact(bytes, keys::DecodeIdempotencyKey, keys::EncodeIdempotencyKey,
             "idempotency key");
  CheckExact(bytes, keys::DecodeChildLinkKey, keys::EncodeChildLinkKey,
             "child link key");
  CheckExact(bytes, keys::DecodeKnownQueueMetaKey, keys::KnownQueueMetaKey,
             "known queue meta key");
  CheckExact(bytes, keys::ReadUint64, keys::EncodeUint64, "uint64");
  CheckExact(bytes, keys::ReadTime, keys::EncodeTime, "time");
  CheckExact(
      bytes, keys::ReadUint32,
      [](uint32_t v) {
        std::string out;
        keys::AppendUint32(&out, v);
        return out;
      },
      "uint32");
  CheckExact(bytes, keys::FromHex, keys::ToHex, "hex");
  // Ids are not exact ("REF-2026-0000042" has a redundant zero); parsing
  // must only not crash, and what it parses must format and parse back.
  if (auto id = keys::ParseReferralId(bytes)) {
    auto again =
        keys::ParseReferralId(keys::FormatReferralId(id->year, id->seq));
    if (!again || again->year != id->year || again->seq != id->seq) {
      Fail("referral id");
    }
  }
}

void RoundTripValues(FuzzedDataProvider& in) {
  const keys::ReadyKey ready{ValidName(in), in.ConsumeIntegral<uint8_t>(),
                             in.ConsumeIntegral<int64_t>(),
                             in.ConsumeIntegral<uint64_t>(),
                             in.ConsumeIntegral<uint32_t>()};
  CheckRoundTrip(ready, keys::DecodeReadyKey, keys::EncodeReadyKey,
                 "ready key round trip");
  const keys::ArrivalKey arrival{ValidName(in), in.ConsumeIntegral<uint64_t>(),
                                 in.ConsumeIntegral<uint32_t>()};
  CheckRoundTrip(arrival, keys::DecodeArrivalKey, keys::EncodeArrivalKey,
                 "arrival key round trip");
  const keys::LeaseKey lease{in.ConsumeIntegral<int64_t>(),
                             in.ConsumeIntegral<uint64_t>(),
                             in.ConsumeIntegral<uint32_t>()};
  CheckRoundTrip(lease, keys::DecodeLeaseKey, keys::EncodeLeaseKey,
                 "lease key round trip");
  const keys::DeadLetterKey dead{ValidName(in), in.ConsumeIntegral<int64_t>(),
                                 in.ConsumeIntegral<uint64_t>(),
                                 in.ConsumeIntegral<uint32_t>()};
  CheckRoundTrip(dead, keys::DecodeDeadLetterKey, keys::EncodeDeadLetterKey,
                 "dead letter key round trip");
  const keys::OutcomeKey outcome{ValidName(in), in.ConsumeIntegral<int64_t>(),
                                 in.ConsumeIntegral<uint64_t>()};
  CheckRoundTrip(outcome, keys::DecodeOutcomeKey, keys::EncodeOutcomeKey,
                 "outcome key round trip");
  const keys::DecisionStatKey stat{ValidName(in), in.ConsumeIntegral<int64_t>(),
                                   in.ConsumeIntegral<uint64_t>()};
  CheckRoundTrip(stat, keys::DecodeDecisionStatKey, keys::EncodeDecisionStatKey,
                 "decision stat key round trip");
  const keys::NoticeKey notice{ValidName(in), in.ConsumeIntegral<int64_t>(),
                               in.ConsumeIntegral<uint64_t>()};
  CheckRoundTrip(notice, keys::DecodeNoticeKey, keys::EncodeNoticeKey,
                 "notice key round trip");
  const keys::ChildLinkKey child{MatchKey(in), in.ConsumeIntegral<int64_t>(),
                                 in.ConsumeIntegral<uint64_t>()};
  CheckRoundTrip(child, keys::DecodeChildLinkKey, keys::EncodeChildLinkKey,
                 "child link key round trip");
  const keys::IdempotencyKey idempotency{ValidName(in),
                                         in.ConsumeRandomLengthString(200)};
  CheckRoundTrip(idempotency, keys::DecodeIdempotencyKey,
                 keys::EncodeIdempotencyKey, "idempotency key round trip");
  const std::string queue = ValidName(in);
  if (keys::DecodeKnownQueueMetaKey(keys::KnownQueueMetaKey(queue)) != queue) {
    Fail("known queue meta key round trip");
  }

  const int year = in.ConsumeIntegralInRange<int>(0, 9999);
  const uint64_t seq = in.ConsumeIntegral<uint64_t>();
  auto id = keys::ParseReferralId(keys::FormatReferralId(year, seq));
  if (!id || id->year != year || id->seq != seq) Fail("referral id round trip");
  const std::string token = in.ConsumeRandomLengthString(64);
  if (keys::FromHex(keys::ToHex(token)) != token) Fail("hex round trip");

  // Order: the second key of each kind against the first.
  const keys::ReadyKey other{
      in.ConsumeBool() ? ready.queue : ValidName(in),
      in.ConsumeBool() ? ready.band : in.ConsumeIntegral<uint8_t>(),
      in.ConsumeBool() ? ready.due_at_us : in.ConsumeIntegral<int64_t>(),
      in.ConsumeBool() ? ready.seq : in.ConsumeIntegral<uint64_t>(),
      in.ConsumeIntegral<uint32_t>()};
  auto ready_fields = [](const keys::ReadyKey& k) {
    return std::tie(k.queue, k.band, k.due_at_us, k.seq, k.generation);
  };
  if ((ready_fields(ready) < ready_fields(other)) !=
      (keys::EncodeReadyKey(ready) < keys::EncodeReadyKey(other))) {
    Fail("ready key order");
  }
  const keys::LeaseKey later{
      in.ConsumeBool() ? lease.expires_at_us : in.ConsumeIntegral<int64_t>(),
      in.ConsumeBool() ? lease.seq : in.ConsumeIntegral<uint64_t>(),
      in.ConsumeIntegral<uint32_t>()};
  auto lease_fields = [](const keys::LeaseKey& k) {
    return std::tie(k.expires_at_us, k.seq, k.generation);
  };
  if ((lease_fields(lease) < lease_fields(later)) !=
      (keys::EncodeLeaseKey(lease) < keys::EncodeLeaseKey(later))) {
    Fail("lease key order");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  DecodeArbitraryBytes(bytes);
  FuzzedDataProvider in(data, size);
  RoundTripValues(in);
  return 0;
}
