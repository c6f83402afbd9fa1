// Test support: times written the way the front door reads them (London
// wall clock) and conversions from the API's protobuf time types.
#ifndef REFERRAL_TESTS_SUPPORT_CIVIL_TIME_H_
#define REFERRAL_TESTS_SUPPORT_CIVIL_TIME_H_

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace referral::testing {

// A wall-clock minute in Europe/London (daylight saving applied).
inline absl::Time London(int year, int month, int day, int hour,
                         int minute = 0) {
  absl::TimeZone london;
  if (!absl::LoadTimeZone("Europe/London", &london)) {
    london = absl::UTCTimeZone();
  }
  return absl::FromCivil(absl::CivilMinute(year, month, day, hour, minute),
                         london);
}

inline absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

inline absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace referral::testing

#endif  // REFERRAL_TESTS_SUPPORT_CIVIL_TIME_H_
