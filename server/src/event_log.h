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

}  // namespace referral::server

#endif  // REFERRAL_SERVER_EVENT_LOG_H_
