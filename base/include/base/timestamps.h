// Time conversions between absl::Time (what the code computes with),
// microseconds since the Unix epoch (what the store keeps) and
// google.protobuf.Timestamp and Duration (what the API carries), and the one
// text form of a time in logs and tools. Built on Abseil's time and protobuf's
// TimeUtil, so there is one definition of each conversion.
#ifndef REFERRAL_BASE_TIMESTAMPS_H_
#define REFERRAL_BASE_TIMESTAMPS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace referral {

// Microseconds since the Unix epoch, saturating at the int64 range
// (absl::InfiniteFuture() and InfinitePast() map to its ends).
int64_t ToMicros(absl::Time t);
absl::Time FromMicros(int64_t micros);

// A Timestamp of `t` to the microsecond (nanos are never negative).
google::protobuf::Timestamp ToTimestamp(absl::Time t);
google::protobuf::Timestamp MicrosToTimestamp(int64_t micros);
absl::Time FromTimestamp(const google::protobuf::Timestamp& t);

google::protobuf::Duration ToDurationProto(absl::Duration d);
absl::Duration FromDurationProto(const google::protobuf::Duration& d);

// RFC 3339 in UTC to the second, e.g. "2026-11-23T20:58:07Z".
std::string FormatUtcSeconds(absl::Time t);
// RFC 3339 in UTC to the microsecond, e.g. "2026-11-23T20:58:07.123456Z".
std::string FormatUtcMicros(absl::Time t);

}  // namespace referral

#endif  // REFERRAL_BASE_TIMESTAMPS_H_
