// Specification of the documentation's shape: the README is a map a
// newcomer reads in a few minutes, every page of docs/ is reachable from it,
// and every relative link in the README and in docs/*.md leads to a file or
// directory of the repository (and a #fragment into a Markdown page to one
// of its headings), so that moving a file or renaming a section cannot leave
// a reader at a dead end. Links to other sites are not followed.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace referral {
namespace {

namespace fs = std::filesystem;
using ::testing::IsEmpty;

constexpr int kMaxReadmeLines = 220;

const fs::path& SourceDir() {
  static const fs::path* const kDir = new fs::path(REFERRAL_SOURCE_DIR);
  return *kDir;
}

std::optional<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// The lines of a Markdown text outside fenced code blocks, with inline code
// spans removed: what is written there is shown, not linked.
std::vector<std::string> ProseLines(absl::string_view text) {
  static const std::regex kCodeSpan("`[^`]*`");
  std::vector<std::string> lines;
  bool in_fence = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "```")) {
      in_fence = !in_fence;
      continue;
    }
    if (!in_fence) {
      lines.push_back(std::regex_replace(std::string(line), kCodeSpan, ""));
    }
  }
  return lines;
}

// The targets of every link and image, "[text](target)", in order.
std::vector<std::string> LinkTargets(absl::string_view text) {
  static const std::regex kLink(R"(\[[^\]]*\]\(([^()\s]+)\))");
  std::vector<std::string> targets;
  for (const std::string& line : ProseLines(text)) {
    for (auto it = std::sregex_iterator(line.begin(), line.end(), kLink);
         it != std::sregex_iterator(); ++it) {
      targets.push_back((*it)[1].str());
    }
  }
  return targets;
}

// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as
// hyphens; a repeated heading gets "-1", "-2", ...
std::set<std::string> HeadingAnchors(absl::string_view text) {
  static const std::regex kHeading("^#{1,6} +(.*?) *#* *$");
  std::set<std::string> anchors;
  std::map<std::string, int> seen;
  bool in_fence = false;
  for (absl::string_view view : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(view), "```")) {
      in_fence = !in_fence;
      continue;
    }
    std::smatch match;
    const std::string line(view);
    if (in_fence || !std::regex_match(line, match, kHeading)) continue;
    std::string anchor;
    for (char c : absl::AsciiStrToLower(match[1].str())) {
      const auto byte = static_cast<unsigned char>(c);
      if (absl::ascii_isalnum(c) || c == '-' || c == '_' || byte >= 0x80) {
        anchor.push_back(c);
      } else if (c == ' ') {
        anchor.push_back('-');
      }
    }
    const int count = seen[anchor]++;
    anchors.insert(count == 0 ? anchor : absl::StrCat(anchor, "-", count));
  }
  return anchors;
}

bool IsExternal(absl::string_view target) {
  static const std::regex kScheme("^[A-Za-z][A-Za-z0-9+.-]*:.*");
  return std::regex_match(target.begin(), target.end(), kScheme);
}

// Every relative link of `text`, the page at `page` (inside the source
// tree), that does not resolve: "page: target (why)".
std::vector<std::string> BrokenLinks(const fs::path& page,
                                     absl::string_view text) {
  const std::string page_name =
      page.lexically_relative(SourceDir()).generic_string();
  std::vector<std::string> broken;
  for (const std::string& target : LinkTargets(text)) {
    if (IsExternal(target)) continue;
    const size_t hash = target.find('#');
    const std::string path = target.substr(0, hash);
    const std::string fragment =
        hash == std::string::npos ? "" : target.substr(hash + 1);
    const fs::path resolved =
        path.empty() ? page : (page.parent_path() / path).lexically_normal();
    const std::string inside =
        resolved.lexically_relative(SourceDir()).generic_string();
    if (path.starts_with('/') || inside.empty() ||
        absl::StartsWith(inside, "..")) {
      broken.push_back(
          absl::StrCat(page_name, ": ", target, " (outside the repository)"));
      continue;
    }
    if (!path.empty() && !fs::exists(resolved)) {
      broken.push_back(
          absl::StrCat(page_name, ": ", target, " (no such file)"));
      continue;
    }
    if (fragment.empty()) continue;
    if (resolved.extension() != ".md") {
      broken.push_back(absl::StrCat(page_name, ": ", target,
                                    " (a fragment into a non-Markdown file)"));
      continue;
    }
    const std::optional<std::string> target_text =
        path.empty() ? std::string(text) : ReadFile(resolved);
    if (!target_text || !HeadingAnchors(*target_text).contains(fragment)) {
      broken.push_back(
          absl::StrCat(page_name, ": ", target, " (no such heading)"));
    }
  }
  return broken;
}

// README.md, then docs/*.md in name order.
std::vector<fs::path> MarkdownPages() {
  std::vector<fs::path> pages;
  for (const auto& entry : fs::directory_iterator(SourceDir() / "docs")) {
    if (entry.path().extension() == ".md") pages.push_back(entry.path());
  }
  std::sort(pages.begin(), pages.end());
  pages.insert(pages.begin(), SourceDir() / "README.md");
  return pages;
}

TEST(DocumentationTest, ReadmeIsAMapOfAtMost220Lines) {
  const std::optional<std::string> readme = ReadFile(SourceDir() / "README.md");
  ASSERT_TRUE(readme.has_value());
  const auto lines = std::count(readme->begin(), readme->end(), '\n');
  EXPECT_LE(lines, kMaxReadmeLines)
      << "README.md is " << lines << " lines; reference belongs in docs/";
}

TEST(DocumentationTest, ReadmeLinksEveryDocsPage) {
  const std::optional<std::string> readme = ReadFile(SourceDir() / "README.md");
  ASSERT_TRUE(readme.has_value());
  std::set<std::string> linked;
  for (const std::string& target : LinkTargets(*readme)) {
    linked.insert(target.substr(0, target.find('#')));
  }
  const std::vector<fs::path> pages = MarkdownPages();
  ASSERT_GT(pages.size(), 1u) << "docs/ holds no Markdown page";
  for (size_t i = 1; i < pages.size(); ++i) {
    const std::string name =
        absl::StrCat("docs/", pages[i].filename().string());
    EXPECT_TRUE(linked.contains(name)) << "README.md does not link " << name;
  }
}

TEST(DocumentationTest, EveryRelativeLinkResolvesInTheRepository) {
  std::vector<std::string> broken;
  size_t relative_links = 0;
  for (const fs::path& page : MarkdownPages()) {
    const std::optional<std::string> text = ReadFile(page);
    ASSERT_TRUE(text.has_value()) << page;
    for (const std::string& target : LinkTargets(*text)) {
      if (!IsExternal(target)) ++relative_links;
    }
    const std::vector<std::string> page_broken = BrokenLinks(page, *text);
    broken.insert(broken.end(), page_broken.begin(), page_broken.end());
  }
  EXPECT_THAT(broken, IsEmpty()) << absl::StrJoin(broken, "\n");
  // The pages link to each other and to the source: a check that found no
  // link at all would be checking nothing.
  EXPECT_GT(relative_links, 50u);
}

// The checker itself, on a page made up here: it reports a missing file, a
// link out of the repository and a missing heading, and passes existing
// files, directories and headings, links to other sites, and anything
// inside code.
TEST(DocumentationTest, TheLinkCheckerReportsEachKindOfDeadEnd) {
  const fs::path page = SourceDir() / "docs" / "made-up.md";
  const std::string text =
      "# A page\n"
      "## Second heading (`with code`)\n"
      "[ok](../README.md) and ![img](console-queue.png), [dir](../storage)\n"
      "[anchor](#second-heading-with-code) "
      "[other](../README.md#quickstart-debian-12-as-root)\n"
      "[site](https://example.org/x.md) `[code](nowhere.md)`\n"
      "```\n[fenced](nowhere.md)\n```\n"
      "[missing](nowhere.md) [out](../../etc/passwd) [gone](#no-such)\n"
      "[gone too](../README.md#no-such-section)\n";
  EXPECT_THAT(
      BrokenLinks(page, text),
      ::testing::ElementsAre("docs/made-up.md: nowhere.md (no such file)",
                             "docs/made-up.md: ../../etc/passwd (outside the "
                             "repository)",
                             "docs/made-up.md: #no-such (no such heading)",
                             "docs/made-up.md: ../README.md#no-such-section "
                             "(no such heading)"));
}

}  // namespace
}  // namespace referral
