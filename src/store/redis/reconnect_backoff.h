#pragma once

#include <algorithm>
#include <chrono>

#include "util/clock.h"

namespace greylight::store {

// When to try a lost connection again: after the first failure `min_delay`, doubling with
// each further failure up to `max_delay`; a success starts over. Pure: the caller passes
// `now`, so tests step it on a FakeClock. Not thread-safe (one owner, the I/O thread).
class ReconnectBackoff {
 public:
  // REQUIRES: 0 < min_delay <= max_delay.
  ReconnectBackoff(std::chrono::milliseconds min_delay, std::chrono::milliseconds max_delay)
      : min_delay_(min_delay), max_delay_(max_delay), delay_(min_delay) {}

  // Records a failed attempt (or a lost connection) at `now`; returns the wait before the
  // next attempt, which is due at next_attempt().
  std::chrono::milliseconds Failed(MonoTime now) {
    std::chrono::milliseconds wait = delay_;
    next_attempt_ = now + wait;
    delay_ = std::min(delay_ * 2, max_delay_);
    return wait;
  }
  // Records a working connection: the next failure waits min_delay again.
  void Succeeded() {
    delay_ = min_delay_;
    next_attempt_ = MonoTime{};
  }
  // The earliest time of the next attempt (the epoch when nothing has failed).
  MonoTime next_attempt() const { return next_attempt_; }
  bool Due(MonoTime now) const { return now >= next_attempt_; }

 private:
  const std::chrono::milliseconds min_delay_;
  const std::chrono::milliseconds max_delay_;
  std::chrono::milliseconds delay_;
  MonoTime next_attempt_{};
};

}  // namespace greylight::store
