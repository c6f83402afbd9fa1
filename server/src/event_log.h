// Structured operational log: one JSON object per line on stderr with time,
// level, event and fields. Fields carry ids, queue names, counts and codes
// only; never names, dates of birth, NHS numbers, addresses or free text.
#ifndef REFERRAL_SERVER_EVENT_LOG_H_
#define REFERRAL_SERVER_EVENT_LOG_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace referral::server {

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

}  // namespace referral::server

#endif  // REFERRAL_SERVER_EVENT_LOG_H_
