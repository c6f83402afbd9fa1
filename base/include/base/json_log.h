// The one operational log of every binary (broker, console, restore tool)
// and of the store's warnings: one JSON object per line on stderr, with
// time, level, event and then the caller's fields, in that order.
//
// Fields carry ids, queue names, counts and codes only: never names, dates
// of birth, NHS numbers, addresses or free text. Every line is valid JSON
// whatever the bytes given (control characters are escaped, invalid UTF-8
// is replaced by U+FFFD), so a log shipper never drops one.
//
// Threading: safe from any thread. Each call writes its lines with one
// write, so lines of concurrent writers never interleave.
#ifndef REFERRAL_BASE_JSON_LOG_H_
#define REFERRAL_BASE_JSON_LOG_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace referral {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Lines below this level are dropped (default kInfo).
void SetLogLevel(LogLevel level);
// "debug", "info", "warning" or "error"; false if unknown.
bool ParseLogLevel(std::string_view text, LogLevel* level);

using LogField = std::pair<std::string_view, std::string>;

void LogEvent(LogLevel level, std::string_view event,
              std::initializer_list<LogField> fields = {});

// Many lines with one write (a group commit's events, a batch call's
// results): they stay together and cost one system call. Lines below the
// log level are dropped as by LogEvent.
class LogLines {
 public:
  LogLines() = default;
  LogLines(const LogLines&) = delete;
  LogLines& operator=(const LogLines&) = delete;
  // Writes what was added.
  ~LogLines() { Flush(); }

  void Add(LogLevel level, std::string_view event,
           std::initializer_list<LogField> fields = {});
  void Flush();

 private:
  std::string lines_;
};

}  // namespace referral

#endif  // REFERRAL_BASE_JSON_LOG_H_
