// Hexadecimal text for bytes: audit hashes shown to admins, page tokens,
// key files. Encoding is Abseil's; decoding is strict (Abseil 20220623's
// HexStringToBytes does not reject bad digits), so untrusted text such as
// a page token or a key file is refused rather than misread.
#ifndef REFERRAL_BASE_HEX_H_
#define REFERRAL_BASE_HEX_H_

#include <optional>
#include <string>
#include <string_view>

namespace referral {

// Lower-case hex, two digits a byte.
std::string BytesToHex(std::string_view bytes);

enum class HexCase { kAny, kLowerOnly };

// The bytes `hex` spells, or nullopt when its length is odd or a character
// is not a hex digit (of the accepted case).
std::optional<std::string> HexToBytes(std::string_view hex,
                                      HexCase accepted = HexCase::kAny);

}  // namespace referral

#endif  // REFERRAL_BASE_HEX_H_
