#pragma once

// Helpers shared by the Redis tests (redis_store_test.cc, redis_endpoints_test.cc,
// redis_connection_test.cc).

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "store/redis/redis_store.h"
#include "util/clock.h"

namespace greylight::store::redis_test {

using namespace std::chrono_literals;

constexpr long long T = 1800000000;

// A redis-server of the tests: TCP on 127.0.0.1:`port`.
inline RedisEndpoint LoopbackEndpoint(int port) {
  RedisEndpoint endpoint;
  endpoint.kind = RedisEndpoint::Kind::kTcp;
  endpoint.addresses = {{"127.0.0.1", port}};
  return endpoint;
}

inline RedisOptions OptionsFor(int port, std::string prefix = "greylight:") {
  RedisOptions options;
  options.endpoint = LoopbackEndpoint(port);
  options.store.prefix = std::move(prefix);
  options.store.background_expiry = false;
  return options;
}

// The clock of the stores whose tests wait for real servers (connections, failovers).
inline const SystemClock kSystemClock;

inline bool Connected(Store& store) { return store.Stats().connected.value_or(false); }

// Runs one Check and waits for its callback, at most `limit`.
struct Outcome {
  std::optional<Result<policy::Transition>> result;
  std::chrono::milliseconds elapsed{0};
};
inline Outcome CheckWithin(Store& store, const CheckKeys& keys, long long now,
                           std::chrono::milliseconds limit = 5000ms) {
  struct Shared {
    std::mutex mutex;
    std::condition_variable done;
    std::optional<Result<policy::Transition>> result;
  };
  auto shared = std::make_shared<Shared>();  // the callback may outlive a timed-out wait
  auto start = std::chrono::steady_clock::now();
  store.Check(keys, FromUnixSeconds(now), [shared](Result<policy::Transition> r) {
    std::lock_guard lock(shared->mutex);
    shared->result.emplace(std::move(r));
    shared->done.notify_one();
  });
  std::unique_lock lock(shared->mutex);
  shared->done.wait_for(lock, limit, [&] { return shared->result.has_value(); });
  Outcome outcome;
  outcome.result = shared->result;
  outcome.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  return outcome;
}

inline bool CheckSucceeds(Store& store, const CheckKeys& keys, long long now) {
  Outcome outcome = CheckWithin(store, keys, now);
  return outcome.result && outcome.result->ok();
}

}  // namespace greylight::store::redis_test
