#include "store/redis/background_sweep.h"

namespace greylight::store {

BackgroundSweep::BackgroundSweep(std::chrono::milliseconds period,
                                 std::function<void(const Stopping&)> sweep) {
  thread_ = std::thread([this, period, sweep = std::move(sweep)] {
    Stopping stopping = [this] {
      std::lock_guard lock(mutex_);
      return stopping_;
    };
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, period, [this] { return stopping_; })) {
      lock.unlock();
      sweep(stopping);
      lock.lock();
    }
  });
}

BackgroundSweep::~BackgroundSweep() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

}  // namespace greylight::store
