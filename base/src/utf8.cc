#include "base/utf8.h"

#include <cstdint>
#include <cstring>

namespace referral {

std::optional<char32_t> DecodeUtf8(std::string_view s, std::size_t* pos) {
  const auto lead = static_cast<unsigned char>(s[*pos]);
  if (lead < 0x80) {
    ++*pos;
    return lead;
  }
  std::size_t length;
  char32_t code_point;
  // The smallest code point that needs `length` bytes: anything below it is
  // an overlong form, which could smuggle '/' or NUL past byte-level checks.
  char32_t min_code_point;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    code_point = lead & 0x1F;
    min_code_point = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    code_point = lead & 0x0F;
    min_code_point = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    code_point = lead & 0x07;
    min_code_point = 0x10000;
  } else {
    // A continuation byte or 0xF8..0xFF where a character should start.
    ++*pos;
    return std::nullopt;
  }
  if (s.size() - *pos < length) {
    ++*pos;
    return std::nullopt;
  }
  for (std::size_t k = 1; k < length; ++k) {
    const auto next = static_cast<unsigned char>(s[*pos + k]);
    if ((next & 0xC0) != 0x80) {
      ++*pos;
      return std::nullopt;
    }
    code_point = (code_point << 6) | (next & 0x3F);
  }
  if (code_point < min_code_point || code_point > 0x10FFFF ||
      (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    ++*pos;
    return std::nullopt;
  }
  *pos += length;
  return code_point;
}

bool IsValidUtf8(std::string_view s) {
  // Referral text is mostly ASCII: skip it eight bytes at a time and decode
  // only around the bytes with the top bit set.
  constexpr uint64_t kTopBits = 0x8080808080808080ULL;
  std::size_t pos = 0;
  while (pos < s.size()) {
    if (s.size() - pos >= sizeof(uint64_t)) {
      uint64_t word;
      std::memcpy(&word, s.data() + pos, sizeof(word));
      if ((word & kTopBits) == 0) {
        pos += sizeof(word);
        continue;
      }
    }
    if (static_cast<unsigned char>(s[pos]) < 0x80) {
      ++pos;
    } else if (!DecodeUtf8(s, &pos).has_value()) {
      return false;
    }
  }
  return true;
}

void AppendUtf8(char32_t code_point, std::string* out) {
  const char32_t cp = code_point;
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace referral
