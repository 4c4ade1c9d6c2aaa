#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "engine/decision.h"
#include "util/log.h"

namespace greylight::engine {

// The per-decision log line's format (--log-format): postgrey's
// "action=..., reason=..., client_name=..." text, or one JSON object with the same fields
// plus the triplet key, the seconds missing or delayed and the decision's duration.
enum class LogFormat { kPostgrey, kJson };

struct LogLine {
  log::Level level;
  std::string text;
  // Repeats once per request while a dependency is down (store, DNS): the server lets one
  // such line through per interval.
  bool rate_limited = false;
};

// The log lines of one decision. Kept from one decision to the next: Clear() keeps the
// lines and their buffers, so a warm connection renders its decisions without allocating.
class LogLines {
 public:
  void Clear() { size_ = 0; }
  // Appends a line at `level` and returns its text, empty, to be written.
  std::string& Add(log::Level level, bool rate_limited = false);
  // Drops the rate-limited lines, keeping the others in order.
  void EraseRateLimited();

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const LogLine& operator[](size_t i) const { return lines_[i]; }
  const LogLine* begin() const { return lines_.data(); }
  const LogLine* end() const { return lines_.data() + size_; }

 private:
  std::vector<LogLine> lines_;  // the first size_ are this decision's
  size_t size_ = 0;
};

// Appends the log lines of `decision` to `out`, in postgrey's order: the warnings and
// notices of the steps (unreadable request, DNS lists that failed, greytrap hit, store
// error, first-seen correction, newly auto-whitelisted client) in level order as they
// happened, then the decision line at notice level in `format` (none for requests that were
// not decided). `took` is how long the decision took (JSON only). Lines whose level is not
// enabled are not rendered.
void RenderDecisionLog(const Decision& decision, LogFormat format, std::chrono::microseconds took,
                       LogLines& out);

// An SPF result as the logs and `greylight explain` show it: the result, the domain, and
// "(broad)" for a pass too broad to key by, or the problem of a temperror or permerror:
// "pass example.com", "temperror example.com (timeout)", "none" (no domain to check).
std::string SpfSummary(const spf::SpfResult& spf);

// The decision line alone, in postgrey's format and in JSON, appended to `line` or returned.
void AppendPostgreyDecisionLine(std::string& line, const Decision& decision);
void AppendJsonDecisionLine(std::string& line, const Decision& decision,
                            std::chrono::microseconds took);
std::string PostgreyDecisionLine(const Decision& decision);
std::string JsonDecisionLine(const Decision& decision, std::chrono::microseconds took);

}  // namespace greylight::engine
