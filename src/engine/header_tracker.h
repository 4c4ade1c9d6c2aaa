#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace greylight::engine {

// Per-connection memory of which deliveries (Postfix `instance`) already got an
// X-Greylist header, so a message with several recipients gets one header. postgrey keeps
// one global list of 10; per connection it stays exact under parallel load.
class HeaderTracker {
 public:
  // True (and remembered) if `instance` has not had a header; an absent instance is new.
  bool TakeNew(std::optional<std::string_view> instance);

 private:
  static constexpr size_t kRemembered = 10;
  std::array<std::string, kRemembered> recent_{};
  size_t next_ = 0;
  size_t size_ = 0;
};

}  // namespace greylight::engine
