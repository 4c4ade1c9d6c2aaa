#include "engine/header_tracker.h"

namespace greylight::engine {

bool HeaderTracker::TakeNew(std::optional<std::string_view> instance) {
  if (!instance) return true;
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < size_; ++i) {
    if (recent_[i] == *instance) return false;
  }
  recent_[next_].assign(*instance);
  next_ = (next_ + 1) % kRemembered;
  if (size_ < kRemembered) ++size_;
  return true;
}

}  // namespace greylight::engine
