#pragma once

#include <fmt/format.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace greylight::log {

// postgrey's (Net::Server's) numeric levels, so -q/-v mean what postgrey users expect:
// a message is written when its level <= the configured level (default kNotice).
enum class Level { kError = 0, kWarning = 1, kNotice = 2, kInfo = 3, kDebug = 4 };

enum class Sink { kStderr, kSyslog };

// Process-wide logging configuration. Call before starting threads. The syslog sink
// uses `ident` and `facility` (a syslog(3) LOG_* facility value).
void Configure(Level level, Sink sink, std::string_view ident = "greylight", int facility = 0);
Level CurrentLevel();
inline bool Enabled(Level level) { return level <= CurrentLevel(); }

// Writes one line. Thread-safe. On stderr, notice and lower lines (the per-decision lines)
// are buffered and written together by Flush(), which the daemon calls every
// kFlushInterval and at exit, or when kMaxBufferedBytes are pending: one write(2) per batch
// instead of one per request. Warnings and errors flush at once.
void Write(Level level, std::string_view message);
void Flush();
inline constexpr std::chrono::milliseconds kFlushInterval{100};
inline constexpr size_t kMaxBufferedBytes = 64 * 1024;

template <typename... Args>
void Log(Level level, fmt::format_string<Args...> format, Args&&... args) {
  if (Enabled(level)) Write(level, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void Error(fmt::format_string<Args...> f, Args&&... a) {
  Log(Level::kError, f, std::forward<Args>(a)...);
}
template <typename... Args>
void Warning(fmt::format_string<Args...> f, Args&&... a) {
  Log(Level::kWarning, f, std::forward<Args>(a)...);
}
template <typename... Args>
void Notice(fmt::format_string<Args...> f, Args&&... a) {
  Log(Level::kNotice, f, std::forward<Args>(a)...);
}
template <typename... Args>
void Info(fmt::format_string<Args...> f, Args&&... a) {
  Log(Level::kInfo, f, std::forward<Args>(a)...);
}
template <typename... Args>
void Debug(fmt::format_string<Args...> f, Args&&... a) {
  Log(Level::kDebug, f, std::forward<Args>(a)...);
}

// Appends `value` to `out` so that it cannot forge structure in a log line: bytes outside
// printable ASCII and the field separator ',' become %XX. Everything else, '%' included,
// is written as is (postgrey doubled '%'; we do not).
void AppendEscaped(std::string& out, std::string_view value);
std::string Escaped(std::string_view value);

// Appends `value` as a JSON string literal (quotes included); bytes that are not valid in
// JSON text (controls, and any byte >= 0x80, since values are not guaranteed UTF-8) are
// written as \u00XX.
void AppendJsonString(std::string& out, std::string_view value);

// Parses "err"/"error", "warning", "notice", "info", "debug" (or 0-4).
std::optional<Level> LevelFromName(std::string_view name);

// Lets one message through per interval and counts the ones held back, so a failing
// backend cannot flood the log with one line per request. Thread-safe.
class RateLimiter {
 public:
  explicit RateLimiter(std::chrono::steady_clock::duration interval) : interval_(interval) {}
  // nullopt: suppress this message. Otherwise log it, with the count held back since the
  // previous one.
  std::optional<uint64_t> Allow(std::chrono::steady_clock::time_point now);

 private:
  const std::chrono::steady_clock::duration interval_;
  std::mutex mutex_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  uint64_t suppressed_ = 0;
};

// Maps a syslog facility name ("mail", "local0", ...) to its LOG_* value; -1 if unknown.
int FacilityFromName(std::string_view name);

}  // namespace greylight::log
