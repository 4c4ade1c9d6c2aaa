#pragma once

#include <atomic>
#include <chrono>

namespace greylight {

// Whole Unix seconds: the resolution postgrey stores and compares.
using UnixTime = std::chrono::sys_seconds;
using Seconds = std::chrono::seconds;
// Monotonic time, for deadlines, timeouts, backoff and rate limits: never jumps with the
// wall clock.
using MonoTime = std::chrono::steady_clock::time_point;
using MonoDuration = std::chrono::steady_clock::duration;

// The only way code learns the time, so tests control it: wall time for greylisting
// records, monotonic time for everything that waits. main() creates the SystemClock and
// hands it down; nothing else under src/ reads a clock. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixTime Now() const = 0;
  virtual MonoTime Monotonic() const = 0;
};

class SystemClock final : public Clock {
 public:
  UnixTime Now() const override {
    return std::chrono::time_point_cast<Seconds>(std::chrono::system_clock::now());
  }
  MonoTime Monotonic() const override { return std::chrono::steady_clock::now(); }
};

// A clock that moves only when told to; both of its times move together. Reading is
// thread-safe, so a backend thread may read it while the test thread moves it.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(UnixTime start) : wall_(start.time_since_epoch().count()) {}
  UnixTime Now() const override { return UnixTime(Seconds(wall_.load())); }
  MonoTime Monotonic() const override { return MonoTime(MonoDuration(mono_.load())); }
  // Moves both times forward by `by`.
  void Advance(MonoDuration by) {
    constexpr MonoDuration::rep kOneSecond =
        std::chrono::duration_cast<MonoDuration>(Seconds(1)).count();
    mono_ += by.count();
    MonoDuration::rep pending = sub_second_ + by.count();
    wall_ += pending / kOneSecond;
    sub_second_ = pending % kOneSecond;
  }
  // Sets the wall time; monotonic time does not go back, so it is left as it is.
  void Set(UnixTime to) { wall_ = to.time_since_epoch().count(); }

 private:
  std::atomic<Seconds::rep> wall_;
  std::atomic<MonoDuration::rep> mono_{0};
  MonoDuration::rep sub_second_ = 0;  // wall time not yet a whole second; mover's thread only
};

inline UnixTime FromUnixSeconds(long long s) { return UnixTime(Seconds(s)); }
inline long long ToUnixSeconds(UnixTime t) { return t.time_since_epoch().count(); }

}  // namespace greylight
