// Fictitious referrals for load generation and tests: realistic in shape
// and size (about 2 KB, like a police domestic-abuse notification about two
// siblings) and valid against the contract, yet plainly not about anyone:
// NHS numbers come from the 999 range that is never issued, phone numbers
// from Ofcom's drama range, e-mail addresses from .invalid, and the text
// says it is synthetic.
#ifndef REFERRAL_CLIENTS_FICTITIOUS_REFERRAL_H_
#define REFERRAL_CLIENTS_FICTITIOUS_REFERRAL_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "referral/v1/referral.pb.h"

namespace referral::clients {

// Modulus 11 check of a 10-digit NHS number (no spaces).
bool IsValidNhsNumber(absl::string_view digits);

// The index-th valid NHS number of the form 999xxxxxxC, skipping the bases
// whose check digit would be 10. Distinct for index 0..kTestNhsNumbers-1,
// then repeats.
inline constexpr int64_t kTestNhsNumbers = 909091;
std::string TestNhsNumber(int64_t index);

// A referral about fictitious children, varied by `index` (names, dates of
// birth, NHS numbers, postcode, the referrer's reference) so that a load
// run does not link every referral to every other as a repeated concern.
// Dates of birth are 2 to 15 years before `now`. Children's names and dates
// of birth are distinct for indexes below kDistinctChildren; their NHS
// numbers are test-range numbers, distinct, for indexes below
// kTestNhsNumbers / 2, and absent above.
inline constexpr int64_t kDistinctChildren = 24'084'480;
referral::v1::Referral MakeFictitiousReferral(int64_t index,
                                              absl::string_view agency_id,
                                              absl::Time now = absl::Now());

// Rewrites the children of `referral` (e.g. loaded from a file) with the
// names, NHS numbers and dates of birth MakeFictitiousReferral would use
// for `index`, for the same reason. Unborn children keep their due date.
void VaryChildren(int64_t index, referral::v1::Referral* referral,
                  absl::Time now = absl::Now());

}  // namespace referral::clients

#endif  // REFERRAL_CLIENTS_FICTITIOUS_REFERRAL_H_
