#pragma once

#include <chrono>
#include <memory>

#include "store/redis/redis_uri.h"
#include "store/store.h"
#include "store/store_config.h"
#include "util/clock.h"
#include "util/status.h"

namespace greylight::store {

struct RedisOptions {
  static constexpr std::chrono::milliseconds kDefaultMinReconnectDelay{100};
  static constexpr std::chrono::milliseconds kDefaultMaxReconnectDelay{5000};
  static constexpr std::chrono::milliseconds kDefaultExpiryPeriod{3600 * 1000};
  static constexpr size_t kDefaultExpiryBatch = 1000;
  static constexpr std::chrono::milliseconds kDefaultWarningInterval{10000};

  // Uses prefix, timeout, timing, background_expiry and must_exist.
  StoreConfig store;
  RedisEndpoint endpoint;
  // After a failure, reconnection is attempted after min_reconnect_delay, doubling up to
  // max_reconnect_delay while attempts keep failing.
  std::chrono::milliseconds min_reconnect_delay = kDefaultMinReconnectDelay;
  std::chrono::milliseconds max_reconnect_delay = kDefaultMaxReconnectDelay;
  // The background sweep (with store.background_expiry) for what TTLs do not cover.
  std::chrono::milliseconds expiry_period = kDefaultExpiryPeriod;
  size_t expiry_batch = kDefaultExpiryBatch;
  // At most one warning per interval; the next one counts those suppressed meanwhile.
  std::chrono::milliseconds warning_interval = kDefaultWarningInterval;
};

// Opens a Store in one Redis server (redis://, redis+unix://, or the master a sentinel
// names), shared by any number of greylightd instances (several MX hosts). Records are
// <prefix>t:<triplet key>, <prefix>c:<client key> and <prefix>g:<client address> with
// postgrey's values and TTLs.
//
// Check() is one round trip: an EVALSHA of a Lua script that reads the records, applies the
// rules of policy::Decide and writes the new records with TTLs, all atomically in Redis; the
// store reruns policy::Decide on the records the script read and refuses the answer if the
// script wrote anything else (redis_check.h). One I/O thread pipelines every queued request
// (redis_pipeline.h). Never blocks mail: every connection attempt and round trip is bounded
// by store.timeout on `clock`'s monotonic time; while the server is down, requests fail at
// once (kUnavailable, the caller fails open) and the store reconnects with backoff, through
// the sentinels for a sentinel endpoint. Warnings are rate-limited (warning_interval).
//
// Fails if the options are invalid or the server refuses the configuration (bad password,
// no such database); an unreachable server is only logged, unless store.must_exist (then
// kUnavailable). `clock` must outlive the store. Thread-safety: see Store; the synchronous
// methods return kBusy from a Check callback.
Result<std::unique_ptr<Store>> OpenRedisStore(const RedisOptions& options, const Clock& clock);

}  // namespace greylight::store
