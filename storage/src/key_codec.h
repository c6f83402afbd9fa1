// Key layouts of the referral store's column families, as pure functions.
//
// Every key sorts bytewise in the order the store needs to read it:
// integers are big-endian, signed times have their sign bit flipped so that
// negative times sort before positive ones, and names end with a 0 byte so
// that one queue's keys never interleave with another's. Decoders accept
// arbitrary bytes and return std::nullopt for anything malformed: they are
// fuzzed, and a corrupt key must never crash the broker.
#ifndef REFERRAL_STORAGE_SRC_KEY_CODEC_H_
#define REFERRAL_STORAGE_SRC_KEY_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace referral::storage::keys {

// --- Primitive encodings. -------------------------------------------------

// 8 bytes, big-endian.
void AppendUint64(std::string* out, uint64_t value);
// 4 bytes, big-endian.
void AppendUint32(std::string* out, uint32_t value);
// 8 bytes, big-endian with the sign bit flipped, so bytewise order is
// numeric order (INT64_MIN first, INT64_MAX last).
void AppendTime(std::string* out, int64_t micros);

std::optional<uint64_t> ReadUint64(std::string_view bytes);
std::optional<uint32_t> ReadUint32(std::string_view bytes);
std::optional<int64_t> ReadTime(std::string_view bytes);

std::string EncodeUint64(uint64_t value);
std::string EncodeTime(int64_t micros);

// The smallest key greater than `key` (key + "\0"): where a scan resumes
// after `key` without visiting it again.
std::string Successor(std::string_view key);

// Queue names and agency ids as the server validates them: [a-z0-9-]{1,64}.
bool IsValidName(std::string_view name);

// `name` + "\0": every key of one queue (or agency) starts with it.
std::string NamePrefix(std::string_view name);
// `name` + "\1": the exclusive upper bound of NamePrefix(name).
std::string NamePrefixEnd(std::string_view name);

// --- referrals: seq (8) -> StoredReferral. ----------------------------------

std::string ReferralKey(uint64_t seq);
std::optional<uint64_t> DecodeReferralKey(std::string_view key);

// --- ready: queue \0 band(1) due_at(8) seq(8) generation(4) -> "". ---------
// Delivery order: priority band, then due time, then arrival (seq).

struct ReadyKey {
  std::string queue;
  uint8_t band = 0;
  int64_t due_at_us = 0;
  uint64_t seq = 0;
  uint32_t generation = 0;
  friend bool operator==(const ReadyKey&, const ReadyKey&) = default;
};
std::string EncodeReadyKey(const ReadyKey& key);
std::optional<ReadyKey> DecodeReadyKey(std::string_view key);
// The smallest ready key of `queue` in `band` due at or after `due_at_us`.
std::string ReadyKeyBound(std::string_view queue, uint8_t band,
                          int64_t due_at_us);

// --- arrival: queue \0 seq(8) generation(4) -> received_at(8). -------------
// The head is the oldest ready referral of the queue.

struct ArrivalKey {
  std::string queue;
  uint64_t seq = 0;
  uint32_t generation = 0;
  friend bool operator==(const ArrivalKey&, const ArrivalKey&) = default;
};
std::string EncodeArrivalKey(const ArrivalKey& key);
std::optional<ArrivalKey> DecodeArrivalKey(std::string_view key);

// --- leases: expires_at(8) seq(8) generation(4) -> queue. ------------------
// One global index ordered by expiry, so the reaper reads only what expired.

struct LeaseKey {
  int64_t expires_at_us = 0;
  uint64_t seq = 0;
  uint32_t generation = 0;
  friend bool operator==(const LeaseKey&, const LeaseKey&) = default;
};
std::string EncodeLeaseKey(const LeaseKey& key);
std::optional<LeaseKey> DecodeLeaseKey(std::string_view key);
// The smallest lease key expiring at or after `expires_at_us`.
std::string LeaseKeyBound(int64_t expires_at_us);

// --- dead letters: queue \0 dead_lettered_at(8) seq(8) generation(4). ------

struct DeadLetterKey {
  std::string queue;
  int64_t dead_lettered_at_us = 0;
  uint64_t seq = 0;
  uint32_t generation = 0;
  friend bool operator==(const DeadLetterKey&, const DeadLetterKey&) = default;
};
std::string EncodeDeadLetterKey(const DeadLetterKey& key);
std::optional<DeadLetterKey> DecodeDeadLetterKey(std::string_view key);

// --- outcomes awaiting acknowledgement: agency \0 decided_at(8) seq(8). ----

struct OutcomeKey {
  std::string agency_id;
  int64_t decided_at_us = 0;
  uint64_t seq = 0;
  friend bool operator==(const OutcomeKey&, const OutcomeKey&) = default;
};
std::string EncodeOutcomeKey(const OutcomeKey& key);
std::optional<OutcomeKey> DecodeOutcomeKey(std::string_view key);

// --- decision stats: queue \0 decided_at(8) seq(8) -> time_to_decision(8). -
// One entry per decided referral of a work queue, in decision order, so the
// time-to-decision figures of a window are one bounded range read. The value
// is received -> decided in microseconds (AppendTime encoding).

struct DecisionStatKey {
  std::string queue;
  int64_t decided_at_us = 0;
  uint64_t seq = 0;
  friend bool operator==(const DecisionStatKey&,
                         const DecisionStatKey&) = default;
};
std::string EncodeDecisionStatKey(const DecisionStatKey& key);
std::optional<DecisionStatKey> DecodeDecisionStatKey(std::string_view key);
// The smallest decision stat key of `queue` decided at or after the time.
std::string DecisionStatKeyBound(std::string_view queue, int64_t decided_at_us);

// --- notices: queue \0 received_at(8) seq(8) -> "". ------------------------
// A referral a queue was told about (routing's `notify`) without holding the
// work item, in order of receipt. Written once at submission, never deleted.

struct NoticeKey {
  std::string queue;
  int64_t received_at_us = 0;
  uint64_t seq = 0;
  friend bool operator==(const NoticeKey&, const NoticeKey&) = default;
};
std::string EncodeNoticeKey(const NoticeKey& key);
std::optional<NoticeKey> DecodeNoticeKey(std::string_view key);
// The smallest notice key of `queue` received at or after the time.
std::string NoticeKeyBound(std::string_view queue, int64_t received_at_us);

// --- idempotency: agency \0 idempotency_key -> seq(8). ---------------------

struct IdempotencyKey {
  std::string agency_id;
  std::string key;  // any bytes; last, so it needs no terminator
  friend bool operator==(const IdempotencyKey&,
                         const IdempotencyKey&) = default;
};
std::string EncodeIdempotencyKey(const IdempotencyKey& key);
std::optional<IdempotencyKey> DecodeIdempotencyKey(std::string_view key);

// --- children: match_key \0 received_at(8) seq(8) -> StoredLink. -----------
// Match keys ("nhs:...", "nd:...") are normalised by the caller and must not
// contain a 0 byte.

struct ChildLinkKey {
  std::string match_key;
  int64_t received_at_us = 0;
  uint64_t seq = 0;
  friend bool operator==(const ChildLinkKey&, const ChildLinkKey&) = default;
};
std::string EncodeChildLinkKey(const ChildLinkKey& key);
std::optional<ChildLinkKey> DecodeChildLinkKey(std::string_view key);
// The smallest child link key of `match_key` received at or after the time.
std::string ChildLinkKeyBound(std::string_view match_key,
                              int64_t received_at_us);
// The length of the part of a child link key (or bound) that names the
// child: the match key and its terminator. Every look-up stays within one
// child, so this is the children index's Bloom filter prefix. nullopt for a
// key without a terminator.
std::optional<size_t> ChildLinkPrefixLength(std::string_view key);

// --- meta. -----------------------------------------------------------------

// The next sequence number to allocate (8 bytes big-endian).
std::string NextSeqMetaKey();
// Where the store writes to show it can commit again after a failed write
// (see ReferralStore::WriteHealth); its value means nothing.
std::string WriteProbeMetaKey();
// "queue\0<name>": marks a queue that has held a referral.
std::string KnownQueueMetaKey(std::string_view queue);
std::optional<std::string> DecodeKnownQueueMetaKey(std::string_view key);

// --- Referral references ("REF-2026-000042") and page tokens. --------------

std::string FormatReferralId(int year, uint64_t seq);
struct ParsedReferralId {
  int year = 0;
  uint64_t seq = 0;
};
// Strict: "REF-", four digits, "-", 6 to 20 digits, nothing else.
std::optional<ParsedReferralId> ParseReferralId(std::string_view id);

// Lower-case hex, for opaque page tokens and lease tokens.
std::string ToHex(std::string_view bytes);
std::optional<std::string> FromHex(std::string_view hex);

}  // namespace referral::storage::keys

#endif  // REFERRAL_STORAGE_SRC_KEY_CODEC_H_
