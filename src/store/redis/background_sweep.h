#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace greylight::store {

// A thread that runs `sweep` every `period` until the object is destroyed. `sweep` receives
// a function that turns true once destruction has begun, to poll between batches and stop
// early. The period is real time: it only spaces out background work.
class BackgroundSweep {
 public:
  using Stopping = std::function<bool()>;
  BackgroundSweep(std::chrono::milliseconds period, std::function<void(const Stopping&)> sweep);
  // Stops the thread, waiting for a running sweep to notice.
  ~BackgroundSweep();
  BackgroundSweep(const BackgroundSweep&) = delete;
  BackgroundSweep& operator=(const BackgroundSweep&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace greylight::store
