#include "rules/identifiers.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"

namespace referral::server {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }

// The UPN letter map: the value of each letter, or -1 for I, O and S, which
// are never used (they are too easily read as 1, 0 and 5).
int UpnLetterValue(char c) {
  static constexpr std::string_view kLetters = "ABCDEFGHJKLMNPQRTUVWXYZ";
  const std::size_t pos = kLetters.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

// One character of a postcode: letter or digit, optionally restricted.
bool IsLetterNotIn(char c, std::string_view excluded) {
  return IsUpper(c) && excluded.find(c) == std::string_view::npos;
}
bool IsLetterIn(char c, std::string_view allowed) {
  return IsUpper(c) && allowed.find(c) != std::string_view::npos;
}

// Digit, letter, letter; the letters are never C, I, K, M, O or V (they look
// like other characters when handwritten).
bool IsValidInwardCode(std::string_view i) {
  return i.size() == 3 && IsDigit(i[0]) && IsLetterNotIn(i[1], "CIKMOV") &&
         IsLetterNotIn(i[2], "CIKMOV");
}

}  // namespace

std::string NormaliseNhsNumber(std::string_view nhs_number) {
  std::string out;
  out.reserve(nhs_number.size());
  for (char c : nhs_number) {
    if (c != ' ') out.push_back(c);
  }
  return out;
}

bool IsValidNhsNumber(std::string_view nhs_number) {
  const std::string digits = NormaliseNhsNumber(nhs_number);
  if (digits.size() != 10) return false;
  int sum = 0;
  for (int i = 0; i < 10; ++i) {
    if (!IsDigit(digits[i])) return false;
    if (i < 9) sum += (digits[i] - '0') * (10 - i);
  }
  int check = 11 - sum % 11;
  if (check == 11) check = 0;
  // A check of 10 means no number with this stem is ever issued.
  if (check == 10) return false;
  return digits[9] - '0' == check;
}

bool IsValidUniquePupilNumber(std::string_view upn) {
  if (upn.size() != 13) return false;
  const int check_letter = UpnLetterValue(upn[0]);
  if (check_letter < 0) return false;
  int sum = 0;
  for (int p = 2; p <= 13; ++p) {
    const char c = upn[p - 1];
    int value;
    if (IsDigit(c)) {
      value = c - '0';
    } else if (p == 13) {
      // A temporary UPN ends in a letter, weighted at its letter-map value.
      value = UpnLetterValue(c);
      if (value < 0) return false;
    } else {
      return false;
    }
    sum += value * p;
  }
  return sum % 23 == check_letter;
}

bool IsValidOutwardCode(std::string_view outward) {
  // Position 1 is never Q, V or X; position 2 (when a letter) never I, J, Z.
  if (outward.size() < 2 || outward.size() > 4 ||
      !IsLetterNotIn(outward[0], "QVX")) {
    return false;
  }
  if (IsDigit(outward[1])) {
    // AN, ANN, ANA.
    if (outward.size() == 2) return true;
    if (outward.size() == 3) {
      return IsDigit(outward[2]) || IsLetterIn(outward[2], "ABCDEFGHJKSTUW");
    }
    return false;
  }
  if (!IsLetterNotIn(outward[1], "IJZ")) return false;
  // AAN, AANN, AANA.
  if (outward.size() < 3 || !IsDigit(outward[2])) return false;
  if (outward.size() == 3) return true;
  return IsDigit(outward[3]) || IsLetterIn(outward[3], "ABEHMNPRVWXY");
}

std::optional<std::string> NormalisePostcode(std::string_view postcode) {
  std::string compact;
  compact.reserve(8);
  for (char c : postcode) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) continue;
    // The longest postcode is 7 characters without its space; anything longer
    // is invalid, and stopping early bounds the work on hostile input.
    if (compact.size() == 7) return std::nullopt;
    compact.push_back(absl::ascii_toupper(static_cast<unsigned char>(c)));
  }
  // The inward code is always 3 characters, so the split point is fixed.
  if (compact.size() < 5) return std::nullopt;
  const std::string_view outward =
      std::string_view(compact).substr(0, compact.size() - 3);
  const std::string_view inward =
      std::string_view(compact).substr(compact.size() - 3);
  // GIR 0AA (historically Girobank) breaks every rule and is still valid.
  const bool girobank = outward == "GIR" && inward == "0AA";
  if (!girobank &&
      !(IsValidOutwardCode(outward) && IsValidInwardCode(inward))) {
    return std::nullopt;
  }
  std::string out(outward);
  out.push_back(' ');
  out.append(inward);
  return out;
}

std::string PostcodeDistrict(std::string_view normalised) {
  const std::optional<std::string> postcode = NormalisePostcode(normalised);
  if (!postcode.has_value()) return "";
  return postcode->substr(0, postcode->find(' '));
}

}  // namespace referral::server
