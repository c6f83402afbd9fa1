// Keys that link referrals about the same child (repeated concerns, domain
// notes section 6): the NHS number when there is a valid one, otherwise the
// normalised name and date of birth. Storage-independent: the server decides
// how keys are indexed; this unit only decides what counts as "the same
// child".
#ifndef REFERRAL_SERVER_CHILD_MATCHING_H_
#define REFERRAL_SERVER_CHILD_MATCHING_H_

#include <string>
#include <string_view>
#include <vector>

#include "referral/v1/referral.pb.h"

namespace referral::server {

// One linking key for one child of a referral.
struct ChildKey {
  int child_index;  // index into Referral.children
  // "nhs:<10 digits>" or "nd:<family>|<given>|<yyyy-mm-dd>". Keys contain
  // personal data: store them only where referral content may be stored.
  std::string key;
  // LinkedReferral.matched_by: "nhs_number" or "name_and_date_of_birth".
  std::string matched_by;

  friend bool operator==(const ChildKey&, const ChildKey&) = default;
};

inline constexpr char kMatchedByNhsNumber[] = "nhs_number";
inline constexpr char kMatchedByNameAndDateOfBirth[] = "name_and_date_of_birth";

// At most one key per child, in child order. The NHS number is preferred
// because names are spelt differently by different agencies; a child with
// neither a valid NHS number nor family name, given name and date of birth
// gets no key (an unborn child, say) rather than a key that would link
// unrelated children.
std::vector<ChildKey> ChildMatchKeys(const referral::v1::Referral& referral);

// Every key each child has, in child order and NHS key first: both the NHS
// key and the name key when both are available. A child's NHS number can
// change (adoption) and an earlier referral may not have carried it, so
// looking up history by all keys (while indexing under all of them) links
// referrals that ChildMatchKeys alone would miss.
std::vector<ChildKey> AllChildMatchKeys(const referral::v1::Referral& referral);

// A name reduced to what survives re-typing by another agency: case-folded,
// accents removed ("Zoë" -> "zoe", "Łukasz" -> "lukasz", "Straße" ->
// "strasse"), spaces, hyphens, apostrophes and other punctuation removed
// ("O'Neil-Smith" -> "oneilsmith"). Letters of other scripts are kept
// (Greek and Cyrillic capitals are lower-cased); invalid UTF-8 is dropped.
std::string NormaliseNameForMatching(std::string_view name);

}  // namespace referral::server

#endif  // REFERRAL_SERVER_CHILD_MATCHING_H_
