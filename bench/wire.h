#pragma once

#include <cstddef>
#include <string_view>

// Just enough of the policy protocol (spec/policy-protocol.md sections 2 and 3) for a load
// generator and a null server: no I/O here, so both are testable on byte strings.
namespace greylight::bench {

// Counts the requests that end in a byte stream fed in arbitrary pieces. A request ends at
// an empty line, i.e. a "\n" that starts a line. Does not keep the bytes, so it never
// allocates. Not thread-safe.
class RequestEndCounter {
 public:
  // Returns how many requests ended inside `bytes`.
  size_t Feed(std::string_view bytes);

 private:
  // True when the next byte begins a line (no partial line pending).
  bool at_line_start_ = true;
};

enum class ReplyStatus {
  kIncomplete,  // No terminating empty line yet: read more.
  kComplete,    // One reply; `action` holds its first action word.
  kMalformed,   // No action= line, an empty action, or bytes after the reply.
};

struct ReplyScan {
  ReplyStatus status = ReplyStatus::kIncomplete;
  // First word after "action=" (up to a space, tab or line end), as sent. Points into the
  // scanned buffer.
  std::string_view action;
};

// Scans `buffer`, which holds everything received since the request was sent. Because
// Postfix keeps one request in flight per connection, anything after the first reply's
// empty line is a protocol error. Lines before or after the action= line are allowed, as
// Postfix's reader skips them.
ReplyScan ScanReply(std::string_view buffer);

}  // namespace greylight::bench
