#pragma once

#include <chrono>

namespace greylight {

// Whole Unix seconds: the resolution postgrey stores and compares.
using UnixTime = std::chrono::sys_seconds;
using Seconds = std::chrono::seconds;

// The only way code outside main() learns the time, so tests can control it.
// Thread-safe implementations only.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixTime Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  UnixTime Now() const override {
    return std::chrono::time_point_cast<Seconds>(std::chrono::system_clock::now());
  }
};

// A clock that moves only when told to. Not thread-safe; for single-threaded tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(UnixTime start) : now_(start) {}
  UnixTime Now() const override { return now_; }
  void Advance(Seconds by) { now_ += by; }
  void Set(UnixTime to) { now_ = to; }

 private:
  UnixTime now_;
};

inline UnixTime FromUnixSeconds(long long s) { return UnixTime(Seconds(s)); }
inline long long ToUnixSeconds(UnixTime t) { return t.time_since_epoch().count(); }

}  // namespace greylight
