// Checks and normal forms for the identifiers a referral carries about a
// child: NHS number, unique pupil number (UPN) and UK postcode, following the
// domain notes (section 5, "Identifiers and their checks"). Pure functions,
// safe to call from any thread.
//
// A format check says nothing about whether the identifier was ever issued
// or the postcode exists; it catches typing and transcription errors early,
// at the agency, rather than at the front door.
#ifndef REFERRAL_SERVER_IDENTIFIERS_H_
#define REFERRAL_SERVER_IDENTIFIERS_H_

#include <optional>
#include <string>
#include <string_view>

namespace referral::server {

// The NHS number with every space removed (it is often written 3-3-4).
// Nothing else is changed, so an invalid number stays recognisably invalid.
std::string NormaliseNhsNumber(std::string_view nhs_number);

// True when `nhs_number`, after removing spaces, is 10 digits whose last digit
// is the Modulus 11 check of the first nine. A check value of 10 is never
// issued, so such numbers are invalid.
bool IsValidNhsNumber(std::string_view nhs_number);

// True when `upn` is 13 characters: a check letter, 11 digits and a final
// digit or (for a temporary UPN) a letter from the UPN letter map, with the
// check letter matching the weighted sum mod 23. Upper case only.
bool IsValidUniquePupilNumber(std::string_view upn);

// The postcode in upper case with exactly one space between outward and
// inward code (e.g. "pe12ab" -> "PE1 2AB"), or nullopt when it does not have
// the format of a UK postcode. Surrounding and internal whitespace in the
// input is ignored. "GIR 0AA" is accepted as the one special case.
std::optional<std::string> NormalisePostcode(std::string_view postcode);

// True when `outward` is an upper-case UK outward code (postcode district)
// such as "PE1" or "EC1A": one of the formats AN, ANN, AAN, AANN, ANA and
// AANA, with the letters each position allows. "GIR" (of GIR 0AA) is not:
// it is a non-geographic code, not a district.
bool IsValidOutwardCode(std::string_view outward);

// The outward code (postcode district) of a postcode, e.g. "PE1" for
// "PE1 2AB". Used to decide which authority's area a child lives in. Accepts
// anything NormalisePostcode accepts; returns "" for an invalid postcode.
std::string PostcodeDistrict(std::string_view normalised);

}  // namespace referral::server

#endif  // REFERRAL_SERVER_IDENTIFIERS_H_
