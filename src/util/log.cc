#include "util/log.h"

#include <syslog.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <utility>

namespace greylight::log {
namespace {

std::atomic<Level> g_level{Level::kNotice};
std::atomic<Sink> g_sink{Sink::kStderr};
std::string g_ident = "greylight";
std::mutex g_buffer_mutex;
std::string g_buffer;  // pending stderr lines, guarded by g_buffer_mutex

void WriteAll(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(STDERR_FILENO, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere left to report a failing stderr
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Called under g_buffer_mutex.
void FlushLocked() {
  WriteAll(g_buffer);
  g_buffer.clear();
}

int SyslogPriority(Level level) {
  switch (level) {
    case Level::kError:
      return LOG_ERR;
    case Level::kWarning:
      return LOG_WARNING;
    case Level::kNotice:
      return LOG_NOTICE;
    case Level::kInfo:
      return LOG_INFO;
    case Level::kDebug:
      return LOG_DEBUG;
  }
  return LOG_NOTICE;
}

}  // namespace

void Configure(Level level, Sink sink, std::string_view ident, int facility) {
  Flush();  // lines buffered for the previous sink go there
  g_level = level;
  g_sink = sink;
  if (sink == Sink::kSyslog) {
    g_ident = std::string(ident);  // openlog keeps the pointer: keep the string alive
    openlog(g_ident.c_str(), LOG_PID | LOG_NDELAY, facility);
  }
}

Level CurrentLevel() { return g_level.load(std::memory_order_relaxed); }

void Write(Level level, std::string_view message) {
  if (!Enabled(level)) return;
  if (g_sink.load(std::memory_order_relaxed) == Sink::kSyslog) {
    syslog(SyslogPriority(level), "%.*s", static_cast<int>(message.size()), message.data());
    return;
  }
  std::lock_guard lock(g_buffer_mutex);
  g_buffer.append(message);
  g_buffer.push_back('\n');
  if (level <= Level::kWarning || g_buffer.size() >= kMaxBufferedBytes) FlushLocked();
}

void Flush() {
  std::lock_guard lock(g_buffer_mutex);
  FlushLocked();
}

namespace {

// Appends `value` to `out` with each byte that `needs_escape` picks replaced by what
// `append_escape` appends for it, and the runs between such bytes appended whole: a
// decision's log line is mostly such runs, and a push_back per byte cost about 5% of a pass
// request's user CPU.
template <typename NeedsEscape, typename AppendEscape>
void AppendWithEscapes(std::string& out, std::string_view value, NeedsEscape needs_escape,
                       AppendEscape append_escape) {
  size_t clean_from = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (!needs_escape(c)) continue;
    out.append(value, clean_from, i - clean_from);
    append_escape(c);
    clean_from = i + 1;
  }
  out.append(value, clean_from);
}

}  // namespace

void AppendEscaped(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  AppendWithEscapes(
      out, value, [](unsigned char c) { return c < 0x20 || c >= 0x7f || c == ','; },
      [&out](unsigned char c) {
        const char escaped[] = {'%', kHex[c >> 4], kHex[c & 0xf]};
        out.append(escaped, sizeof(escaped));
      });
}

std::string Escaped(std::string_view value) {
  std::string out;
  AppendEscaped(out, value);
  return out;
}

void AppendJsonString(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  AppendWithEscapes(
      out, value, [](unsigned char c) { return c < 0x20 || c >= 0x7f || c == '"' || c == '\\'; },
      [&out](unsigned char c) {
        if (c == '"' || c == '\\') {
          const char escaped[] = {'\\', static_cast<char>(c)};
          out.append(escaped, sizeof(escaped));
        } else {
          const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
          out.append(escaped, sizeof(escaped));
        }
      });
  out.push_back('"');
}

std::optional<Level> LevelFromName(std::string_view name) {
  if (name == "err" || name == "error" || name == "0") return Level::kError;
  if (name == "warning" || name == "1") return Level::kWarning;
  if (name == "notice" || name == "2") return Level::kNotice;
  if (name == "info" || name == "3") return Level::kInfo;
  if (name == "debug" || name == "4") return Level::kDebug;
  return std::nullopt;
}

std::optional<uint64_t> RateLimiter::Allow(std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (last_ && now - *last_ < interval_) {
    ++suppressed_;
    return std::nullopt;
  }
  last_ = now;
  uint64_t held_back = suppressed_;
  suppressed_ = 0;
  return held_back;
}

int FacilityFromName(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, int>, 20> kFacilities{{
      {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"cron", LOG_CRON},
      {"daemon", LOG_DAEMON}, {"ftp", LOG_FTP},           {"kern", LOG_KERN},
      {"lpr", LOG_LPR},       {"mail", LOG_MAIL},         {"news", LOG_NEWS},
      {"syslog", LOG_SYSLOG}, {"user", LOG_USER},         {"uucp", LOG_UUCP},
      {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},     {"local2", LOG_LOCAL2},
      {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},     {"local5", LOG_LOCAL5},
      {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
  }};
  for (const auto& [facility_name, value] : kFacilities) {
    if (facility_name == name) return value;
  }
  return -1;
}

}  // namespace greylight::log
