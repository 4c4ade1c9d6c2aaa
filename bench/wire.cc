#include "bench/wire.h"

#include <cstring>

namespace greylight::bench {

size_t RequestEndCounter::Feed(std::string_view bytes) {
  size_t ended = 0;
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  while (p < end) {
    const void* found = std::memchr(p, '\n', static_cast<size_t>(end - p));
    if (found == nullptr) {
      at_line_start_ = false;
      break;
    }
    const char* newline = static_cast<const char*>(found);
    if (newline == p && at_line_start_) ++ended;
    at_line_start_ = true;
    p = newline + 1;
  }
  return ended;
}

ReplyScan ScanReply(std::string_view buffer) {
  ReplyScan scan;
  size_t terminator = buffer.find("\n\n");
  if (terminator == std::string_view::npos) {
    // A reply that starts with an empty line has no attributes at all.
    if (buffer.starts_with("\n")) scan.status = ReplyStatus::kMalformed;
    return scan;
  }
  if (buffer.starts_with("\n") || terminator + 2 != buffer.size()) {
    scan.status = ReplyStatus::kMalformed;
    return scan;
  }
  std::string_view block = buffer.substr(0, terminator + 1);
  size_t line_start = 0;
  while (line_start < block.size()) {
    size_t line_end = block.find('\n', line_start);
    std::string_view line = block.substr(line_start, line_end - line_start);
    if (line.starts_with("action=")) {
      std::string_view value = line.substr(7);
      scan.action = value.substr(0, value.find_first_of(" \t"));
      scan.status = scan.action.empty() ? ReplyStatus::kMalformed : ReplyStatus::kComplete;
      return scan;
    }
    line_start = line_end + 1;
  }
  scan.status = ReplyStatus::kMalformed;
  return scan;
}

}  // namespace greylight::bench
