#pragma once

#include <array>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace greylight::engine {

// Memory of which deliveries (Postfix `instance`) already got an X-Greylist header, so a
// message with several recipients gets one header. Postfix asks all recipients of a message
// on one connection, so the server keeps one per connection, exact under parallel load;
// with --exim every request has its own connection, so one tracker serves them all, as
// postgrey's global list of 10 does. Thread-safe.
class HeaderTracker {
 public:
  // True (and remembered) if `instance` has not had a header; an absent instance is new.
  bool TakeNew(std::optional<std::string_view> instance);

 private:
  static constexpr size_t kRemembered = 10;
  std::mutex mutex_;
  std::array<std::string, kRemembered> recent_{};
  size_t next_ = 0;
  size_t size_ = 0;
};

}  // namespace greylight::engine
