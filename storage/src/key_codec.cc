#include "key_codec.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_format.h"
#include "base/hex.h"

namespace referral::storage::keys {
namespace {

constexpr uint64_t kSignBit = uint64_t{1} << 63;
constexpr char kNameEnd = '\0';
constexpr size_t kMaxNameLength = 64;

// Splits "name\0rest" into name and rest; nullopt without a terminator.
std::optional<std::pair<std::string_view, std::string_view>> SplitName(
    std::string_view key) {
  const size_t end = key.find(kNameEnd);
  if (end == std::string_view::npos) return std::nullopt;
  return std::make_pair(key.substr(0, end), key.substr(end + 1));
}

// Splits a key of the form "name\0rest" whose name is valid and whose rest
// is `rest_size` bytes; nullopt for any other key.
std::optional<std::pair<std::string_view, std::string_view>> SplitNamed(
    std::string_view key, size_t rest_size) {
  auto split = SplitName(key);
  if (!split || !IsValidName(split->first) ||
      split->second.size() != rest_size) {
    return std::nullopt;
  }
  return split;
}

// Reads a fixed-width field from the front of `rest`, consuming it.
std::optional<uint64_t> TakeUint64(std::string_view& rest) {
  std::optional<uint64_t> value = ReadUint64(rest.substr(0, 8));
  if (value) rest.remove_prefix(8);
  return value;
}
std::optional<uint32_t> TakeUint32(std::string_view& rest) {
  std::optional<uint32_t> value = ReadUint32(rest.substr(0, 4));
  if (value) rest.remove_prefix(4);
  return value;
}
std::optional<int64_t> TakeTime(std::string_view& rest) {
  std::optional<int64_t> value = ReadTime(rest.substr(0, 8));
  if (value) rest.remove_prefix(8);
  return value;
}

bool IsDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

void AppendUint64(std::string* out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

void AppendUint32(std::string* out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

void AppendTime(std::string* out, int64_t micros) {
  AppendUint64(out, static_cast<uint64_t>(micros) ^ kSignBit);
}

std::optional<uint64_t> ReadUint64(std::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  uint64_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<uint8_t>(c);
  return value;
}

std::optional<uint32_t> ReadUint32(std::string_view bytes) {
  if (bytes.size() != 4) return std::nullopt;
  uint32_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<uint8_t>(c);
  return value;
}

std::optional<int64_t> ReadTime(std::string_view bytes) {
  std::optional<uint64_t> raw = ReadUint64(bytes);
  if (!raw) return std::nullopt;
  return static_cast<int64_t>(*raw ^ kSignBit);
}

std::string EncodeUint64(uint64_t value) {
  std::string out;
  AppendUint64(&out, value);
  return out;
}

std::string EncodeTime(int64_t micros) {
  std::string out;
  AppendTime(&out, micros);
  return out;
}

std::string Successor(std::string_view key) {
  std::string out(key);
  out.push_back('\0');
  return out;
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string NamePrefix(std::string_view name) {
  std::string out(name);
  out.push_back(kNameEnd);
  return out;
}

std::string NamePrefixEnd(std::string_view name) {
  std::string out(name);
  out.push_back(kNameEnd + 1);
  return out;
}

// --- referrals. ------------------------------------------------------------

std::string ReferralKey(uint64_t seq) { return EncodeUint64(seq); }

std::optional<uint64_t> DecodeReferralKey(std::string_view key) {
  return ReadUint64(key);
}

// --- ready. ----------------------------------------------------------------

std::string EncodeReadyKey(const ReadyKey& key) {
  std::string out = NamePrefix(key.queue);
  out.push_back(static_cast<char>(key.band));
  AppendTime(&out, key.due_at_us);
  AppendUint64(&out, key.seq);
  AppendUint32(&out, key.generation);
  return out;
}

std::optional<ReadyKey> DecodeReadyKey(std::string_view key) {
  auto split = SplitNamed(key, 1 + 8 + 8 + 4);
  if (!split) return std::nullopt;
  std::string_view rest = split->second;
  ReadyKey out;
  out.queue = std::string(split->first);
  out.band = static_cast<uint8_t>(rest[0]);
  rest.remove_prefix(1);
  auto due = TakeTime(rest);
  auto seq = TakeUint64(rest);
  auto generation = TakeUint32(rest);
  if (!due || !seq || !generation) return std::nullopt;
  out.due_at_us = *due;
  out.seq = *seq;
  out.generation = *generation;
  return out;
}

std::string ReadyKeyBound(std::string_view queue, uint8_t band,
                          int64_t due_at_us) {
  std::string out = NamePrefix(queue);
  out.push_back(static_cast<char>(band));
  AppendTime(&out, due_at_us);
  return out;
}

// --- arrival. --------------------------------------------------------------

std::string EncodeArrivalKey(const ArrivalKey& key) {
  std::string out = NamePrefix(key.queue);
  AppendUint64(&out, key.seq);
  AppendUint32(&out, key.generation);
  return out;
}

std::optional<ArrivalKey> DecodeArrivalKey(std::string_view key) {
  auto split = SplitNamed(key, 8 + 4);
  if (!split) return std::nullopt;
  std::string_view rest = split->second;
  auto seq = TakeUint64(rest);
  auto generation = TakeUint32(rest);
  if (!seq || !generation) return std::nullopt;
  return ArrivalKey{std::string(split->first), *seq, *generation};
}

// --- leases. ---------------------------------------------------------------

std::string EncodeLeaseKey(const LeaseKey& key) {
  std::string out;
  AppendTime(&out, key.expires_at_us);
  AppendUint64(&out, key.seq);
  AppendUint32(&out, key.generation);
  return out;
}

std::optional<LeaseKey> DecodeLeaseKey(std::string_view key) {
  if (key.size() != 8 + 8 + 4) return std::nullopt;
  std::string_view rest = key;
  auto expires = TakeTime(rest);
  auto seq = TakeUint64(rest);
  auto generation = TakeUint32(rest);
  if (!expires || !seq || !generation) return std::nullopt;
  return LeaseKey{*expires, *seq, *generation};
}

std::string LeaseKeyBound(int64_t expires_at_us) {
  return EncodeTime(expires_at_us);
}

// --- dead letters. ---------------------------------------------------------

std::string EncodeDeadLetterKey(const DeadLetterKey& key) {
  std::string out = NamePrefix(key.queue);
  AppendTime(&out, key.dead_lettered_at_us);
  AppendUint64(&out, key.seq);
  AppendUint32(&out, key.generation);
  return out;
}

std::optional<DeadLetterKey> DecodeDeadLetterKey(std::string_view key) {
  auto split = SplitNamed(key, 8 + 8 + 4);
  if (!split) return std::nullopt;
  std::string_view rest = split->second;
  auto at = TakeTime(rest);
  auto seq = TakeUint64(rest);
  auto generation = TakeUint32(rest);
  if (!at || !seq || !generation) return std::nullopt;
  return DeadLetterKey{std::string(split->first), *at, *seq, *generation};
}

// --- outcomes, decision stats and notices: name \0 time(8) seq(8). --------

namespace {

std::string NameTimeBound(std::string_view name, int64_t at_us) {
  std::string out = NamePrefix(name);
  AppendTime(&out, at_us);
  return out;
}

// A key {name, time, seq} (OutcomeKey, DecisionStatKey, NoticeKey).
template <typename Key>
std::string EncodeNameTimeSeq(const Key& key) {
  const auto& [name, at_us, seq] = key;
  std::string out = NameTimeBound(name, at_us);
  AppendUint64(&out, seq);
  return out;
}

template <typename Key>
std::optional<Key> DecodeNameTimeSeq(std::string_view key) {
  auto split = SplitNamed(key, 8 + 8);
  if (!split) return std::nullopt;
  std::string_view rest = split->second;
  auto at = TakeTime(rest);
  auto seq = TakeUint64(rest);
  if (!at || !seq) return std::nullopt;
  return Key{std::string(split->first), *at, *seq};
}

}  // namespace

std::string EncodeOutcomeKey(const OutcomeKey& key) {
  return EncodeNameTimeSeq(key);
}
std::optional<OutcomeKey> DecodeOutcomeKey(std::string_view key) {
  return DecodeNameTimeSeq<OutcomeKey>(key);
}

std::string EncodeDecisionStatKey(const DecisionStatKey& key) {
  return EncodeNameTimeSeq(key);
}
std::optional<DecisionStatKey> DecodeDecisionStatKey(std::string_view key) {
  return DecodeNameTimeSeq<DecisionStatKey>(key);
}
std::string DecisionStatKeyBound(std::string_view queue,
                                 int64_t decided_at_us) {
  return NameTimeBound(queue, decided_at_us);
}

std::string EncodeNoticeKey(const NoticeKey& key) {
  return EncodeNameTimeSeq(key);
}
std::optional<NoticeKey> DecodeNoticeKey(std::string_view key) {
  return DecodeNameTimeSeq<NoticeKey>(key);
}

std::string NoticeKeyBound(std::string_view queue, int64_t received_at_us) {
  return NameTimeBound(queue, received_at_us);
}

// --- idempotency. ----------------------------------------------------------

std::string EncodeIdempotencyKey(const IdempotencyKey& key) {
  std::string out = NamePrefix(key.agency_id);
  out.append(key.key);
  return out;
}

std::optional<IdempotencyKey> DecodeIdempotencyKey(std::string_view key) {
  auto split = SplitName(key);
  if (!split || !IsValidName(split->first)) return std::nullopt;
  return IdempotencyKey{std::string(split->first), std::string(split->second)};
}

// --- children. -------------------------------------------------------------

std::string EncodeChildLinkKey(const ChildLinkKey& key) {
  std::string out = ChildLinkKeyBound(key.match_key, key.received_at_us);
  AppendUint64(&out, key.seq);
  return out;
}

std::optional<ChildLinkKey> DecodeChildLinkKey(std::string_view key) {
  // The match key is free text without 0 bytes, so the fixed-width tail is
  // what is read from the end; the terminator must sit just before it.
  constexpr size_t kTail = 8 + 8;
  if (key.size() < kTail + 2) return std::nullopt;
  const size_t name_end = key.size() - kTail - 1;
  if (key[name_end] != kNameEnd) return std::nullopt;
  std::string_view match_key = key.substr(0, name_end);
  if (match_key.empty() || match_key.find(kNameEnd) != std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view rest = key.substr(name_end + 1);
  auto at = TakeTime(rest);
  auto seq = TakeUint64(rest);
  if (!at || !seq) return std::nullopt;
  return ChildLinkKey{std::string(match_key), *at, *seq};
}

std::string ChildLinkKeyBound(std::string_view match_key,
                              int64_t received_at_us) {
  std::string out = NamePrefix(match_key);
  AppendTime(&out, received_at_us);
  return out;
}

std::optional<size_t> ChildLinkPrefixLength(std::string_view key) {
  const size_t end = key.find(kNameEnd);
  if (end == std::string_view::npos) return std::nullopt;
  return end + 1;
}

// --- meta. -----------------------------------------------------------------

std::string NextSeqMetaKey() { return "next_seq"; }

std::string WriteProbeMetaKey() { return "write_probe"; }

std::string KnownQueueMetaKey(std::string_view queue) {
  std::string out = NamePrefix("queue");
  out.append(queue);
  return out;
}

std::optional<std::string> DecodeKnownQueueMetaKey(std::string_view key) {
  auto split = SplitName(key);
  if (!split || split->first != "queue" || !IsValidName(split->second)) {
    return std::nullopt;
  }
  return std::string(split->second);
}

// --- references and tokens. ------------------------------------------------

std::string FormatReferralId(int year, uint64_t seq) {
  return absl::StrFormat("REF-%04d-%06u", year, seq);
}

std::optional<ParsedReferralId> ParseReferralId(std::string_view id) {
  constexpr std::string_view kPrefix = "REF-";
  if (id.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  id.remove_prefix(kPrefix.size());
  if (id.size() < 4 + 1 + 6 || id[4] != '-') return std::nullopt;
  std::string_view year = id.substr(0, 4);
  std::string_view seq = id.substr(5);
  if (!IsDigits(year) || !IsDigits(seq) || seq.size() > 20) {
    return std::nullopt;
  }
  ParsedReferralId out;
  for (char c : year) out.year = out.year * 10 + (c - '0');
  for (char c : seq) {
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (out.seq > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      return std::nullopt;  // does not fit in 64 bits
    }
    out.seq = out.seq * 10 + digit;
  }
  return out;
}

std::string ToHex(std::string_view bytes) { return BytesToHex(bytes); }

std::optional<std::string> FromHex(std::string_view hex) {
  // Upper case is not a token we issued.
  return HexToBytes(hex, HexCase::kLowerOnly);
}

}  // namespace referral::storage::keys
