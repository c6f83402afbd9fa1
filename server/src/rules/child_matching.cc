#include "rules/child_matching.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "base/utf8.h"
#include "referral/v1/referral.pb.h"
#include "rules/identifiers.h"
#include "rules/referral_validator.h"

namespace referral::server {
namespace {

// A run of consecutive code points that all fold to the same ASCII text.
struct FoldRun {
  int count;
  std::string_view ascii;
};

// U+00C0..U+00FF (Latin-1 letters). × and ÷ fold to nothing.
constexpr FoldRun kLatin1Folds[] = {
    {6, "a"}, {1, "ae"}, {1, "c"}, {4, "e"}, {4, "i"}, {1, "d"},  {1, "n"},
    {5, "o"}, {1, ""},   {1, "o"}, {4, "u"}, {1, "y"}, {1, "th"}, {1, "ss"},
    {6, "a"}, {1, "ae"}, {1, "c"}, {4, "e"}, {4, "i"}, {1, "d"},  {1, "n"},
    {5, "o"}, {1, ""},   {1, "o"}, {4, "u"}, {1, "y"}, {1, "th"}, {1, "y"},
};

// U+0100..U+017F (Latin Extended-A: Polish, Czech, Turkish, Welsh...).
constexpr FoldRun kLatinExtendedAFolds[] = {
    {6, "a"},  {8, "c"},  {4, "d"}, {10, "e"}, {8, "g"},  {4, "h"},
    {10, "i"}, {2, "ij"}, {2, "j"}, {3, "k"},  {10, "l"}, {9, "n"},
    {6, "o"},  {2, "oe"}, {6, "r"}, {8, "s"},  {6, "t"},  {12, "u"},
    {2, "w"},  {3, "y"},  {6, "z"}, {1, "s"},
};

template <std::size_t N>
constexpr int RunLength(const FoldRun (&runs)[N]) {
  int total = 0;
  for (const FoldRun& run : runs) total += run.count;
  return total;
}
static_assert(RunLength(kLatin1Folds) == 0x100 - 0xC0);
static_assert(RunLength(kLatinExtendedAFolds) == 0x180 - 0x100);

template <std::size_t N>
std::string_view Fold(const FoldRun (&runs)[N], int offset) {
  for (const FoldRun& run : runs) {
    if (offset < run.count) return run.ascii;
    offset -= run.count;
  }
  return "";
}

// Spaces, punctuation, symbols and combining accents: nothing a second
// agency would reliably type the same way.
bool IsIgnorable(char32_t cp) {
  return (cp < 0x80 && !absl::ascii_isalnum(static_cast<unsigned char>(cp))) ||
         (cp >= 0x80 && cp <= 0xBF) ||      // controls, NBSP, ´ ¨ and symbols
         (cp >= 0x2B0 && cp <= 0x36F) ||    // modifier letters (ʼ ʻ), accents
         (cp >= 0x2000 && cp <= 0x206F) ||  // spaces, dashes, quotes ’
         cp == 0x3000 || cp == 0xFEFF;      // ideographic space, BOM
}

std::string NhsKey(const referral::v1::Child& child) {
  // Only spaces are allowed inside an NHS number, but a stray tab or newline
  // at either end would be trimmed by NormaliseReferral anyway.
  std::string digits = NormaliseNhsNumber(child.nhs_number());
  absl::StripAsciiWhitespace(&digits);
  if (digits.empty() || !IsValidNhsNumber(digits)) return "";
  return "nhs:" + digits;
}

std::string NameAndBirthKey(const referral::v1::Child& child) {
  const std::string family = NormaliseNameForMatching(child.family_name());
  const std::string given = NormaliseNameForMatching(child.given_name());
  if (family.empty() || given.empty() || !child.has_date_of_birth()) return "";
  const std::optional<absl::CivilDay> birth =
      CalendarDateToCivilDay(child.date_of_birth());
  if (!birth.has_value()) return "";
  return absl::StrFormat("nd:%s|%s|%04d-%02d-%02d", family, given,
                         birth->year(), birth->month(), birth->day());
}

}  // namespace

std::string NormaliseNameForMatching(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  std::size_t i = 0;
  while (i < name.size()) {
    const std::optional<char32_t> next = DecodeUtf8(name, &i);
    if (!next.has_value()) continue;  // invalid bytes are dropped one by one
    const char32_t cp = *next;
    if (IsIgnorable(cp)) continue;
    if (cp < 0x80) {
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(cp)));
    } else if (cp >= 0xC0 && cp < 0x100) {
      out.append(Fold(kLatin1Folds, static_cast<int>(cp - 0xC0)));
    } else if (cp >= 0x100 && cp < 0x180) {
      out.append(Fold(kLatinExtendedAFolds, static_cast<int>(cp - 0x100)));
    } else if ((cp >= 0x1E80 && cp <= 0x1E85)) {
      out.push_back('w');  // Welsh ẁ ẃ ẅ
    } else if (cp == 0x1EF2 || cp == 0x1EF3) {
      out.push_back('y');  // Welsh ỳ
    } else if (cp >= 0x391 && cp <= 0x3A9) {
      AppendUtf8(cp + 0x20, &out);  // Greek capitals
    } else if (cp >= 0x410 && cp <= 0x42F) {
      AppendUtf8(cp + 0x20, &out);  // Cyrillic capitals А..Я
    } else if (cp >= 0x400 && cp <= 0x40F) {
      AppendUtf8(cp + 0x50, &out);  // Cyrillic capitals Ѐ..Џ
    } else {
      AppendUtf8(cp, &out);
    }
  }
  return out;
}

std::vector<ChildKey> ChildMatchKeys(const referral::v1::Referral& referral) {
  std::vector<ChildKey> keys;
  for (int i = 0; i < referral.children_size(); ++i) {
    const referral::v1::Child& child = referral.children(i);
    if (std::string key = NhsKey(child); !key.empty()) {
      keys.push_back({i, std::move(key), kMatchedByNhsNumber});
    } else if (std::string key = NameAndBirthKey(child); !key.empty()) {
      keys.push_back({i, std::move(key), kMatchedByNameAndDateOfBirth});
    }
  }
  return keys;
}

std::vector<ChildKey> AllChildMatchKeys(
    const referral::v1::Referral& referral) {
  std::vector<ChildKey> keys;
  for (int i = 0; i < referral.children_size(); ++i) {
    const referral::v1::Child& child = referral.children(i);
    if (std::string key = NhsKey(child); !key.empty()) {
      keys.push_back({i, std::move(key), kMatchedByNhsNumber});
    }
    if (std::string key = NameAndBirthKey(child); !key.empty()) {
      keys.push_back({i, std::move(key), kMatchedByNameAndDateOfBirth});
    }
  }
  return keys;
}

}  // namespace referral::server
