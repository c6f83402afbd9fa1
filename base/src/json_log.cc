#include "base/json_log.h"

#include <atomic>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/timestamps.h"
#include "base/utf8.h"

namespace referral {
namespace {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// Escapes what JSON requires and replaces invalid UTF-8 with U+FFFD, so
// the line parses whatever bytes a field holds.
void AppendJsonString(std::string& out, std::string_view text) {
  out.push_back('"');
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto c = static_cast<unsigned char>(text[pos]);
    if (c >= 0x80) {
      const std::size_t start = pos;
      if (DecodeUtf8(text, &pos).has_value()) {
        out.append(text.substr(start, pos - start));
      } else {
        out += "\ufffd";
      }
      continue;
    }
    ++pos;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

}  // namespace

void SetLogLevel(LogLevel level) {
  min_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  for (LogLevel candidate : {LogLevel::kDebug, LogLevel::kInfo,
                             LogLevel::kWarning, LogLevel::kError}) {
    if (text == LevelName(candidate)) {
      *level = candidate;
      return true;
    }
  }
  return false;
}

namespace {

bool Logged(LogLevel level) {
  return static_cast<int>(level) >= min_level.load(std::memory_order_relaxed);
}

void AppendLine(std::string& out, LogLevel level, std::string_view event,
                std::initializer_list<LogField> fields) {
  out += "{\"time\":";
  AppendJsonString(out, FormatUtcMicros(absl::Now()));
  out += ",\"level\":";
  AppendJsonString(out, LevelName(level));
  out += ",\"event\":";
  AppendJsonString(out, event);
  for (const auto& [key, value] : fields) {
    out.push_back(',');
    AppendJsonString(out, key);
    out.push_back(':');
    AppendJsonString(out, value);
  }
  out += "}\n";
}

// One write per call so concurrent writers' lines never interleave.
void Write(std::string_view lines) {
  if (lines.empty()) return;
  std::fwrite(lines.data(), 1, lines.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

void LogEvent(LogLevel level, std::string_view event,
              std::initializer_list<LogField> fields) {
  if (!Logged(level)) return;
  std::string line;
  AppendLine(line, level, event, fields);
  Write(line);
}

void LogLines::Add(LogLevel level, std::string_view event,
                   std::initializer_list<LogField> fields) {
  if (Logged(level)) AppendLine(lines_, level, event, fields);
}

void LogLines::Flush() {
  Write(lines_);
  lines_.clear();
}

}  // namespace referral
