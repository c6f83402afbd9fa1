// Strict UTF-8 decoding and encoding for the text a referral carries.
// protobuf C++ does not reject invalid UTF-8 on every path (in-process
// setters, some parsers), so intake validates it and name matching decodes
// it here, with one definition of what counts as valid: no overlong forms,
// no surrogates (U+D800..U+DFFF) and nothing above U+10FFFF.
#ifndef REFERRAL_BASE_UTF8_H_
#define REFERRAL_BASE_UTF8_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace referral {

// Decodes the code point that starts at `s[*pos]` (`*pos < s.size()`) and
// advances `*pos` past it. For invalid UTF-8 returns nullopt and advances
// one byte only, so a caller that skips bad bytes resynchronises at the next
// byte and a corrupt lead byte cannot swallow the character after it.
std::optional<char32_t> DecodeUtf8(std::string_view s, std::size_t* pos);

// True when all of `s` is valid UTF-8 (the empty string is).
bool IsValidUtf8(std::string_view s);

// Appends the UTF-8 encoding of `code_point`, which must be a Unicode
// scalar value (as DecodeUtf8 returns).
void AppendUtf8(char32_t code_point, std::string* out);

}  // namespace referral

#endif  // REFERRAL_BASE_UTF8_H_
