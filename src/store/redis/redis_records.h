#pragma once

#include <chrono>
#include <memory>

#include "store/redis/redis_keys.h"
#include "store/redis/redis_transport.h"
#include "store/store.h"
#include "store/store_config.h"
#include "util/clock.h"

namespace greylight::store {

// Filled by the store factories from RedisOptions (redis_store.h), which owns the defaults.
struct RedisRecordOptions {
  // Uses timing and background_expiry.
  StoreConfig store;
  // Records written by Check() carry TTLs, so Redis expires them by itself. A background
  // sweep every expiry_period runs ExpireSome() over every table for what TTLs do not
  // cover: malformed values and records that Put() stored already expired.
  std::chrono::milliseconds expiry_period{};
  size_t expiry_batch = 0;
};

// The Store in Redis over `transport` with the key names of `layout`: the store logic of
// the single-server and the cluster backends (redis_store.h, redis_cluster_store.h).
//
// Check() is one EVALSHA of the check script (redis_check.h) on the server of its keys'
// slot, reply record included; on a cluster, the reply record (its own slot) is read by a
// GET first, and a greytrap entry whose tag differs from the triplet's (--lookup-by domain
// or smart) is read or hit by a script on its own slot before the check. RecordReply() is
// one EVALSHA of the reply-record script on the reply key's server. Get/Put/Delete are
// routed by key; Put gives the record the TTL a Check would have given it (by
// policy::ExpiresAt and the store's clock). ForEach and ExpireSome SCAN every server
// (KeyScan); ExpireSome deletes malformed and policy::Expired() records with a
// compare-and-delete script, resuming where the previous call stopped, at most one full
// cycle of each table per call. Flush() returns Ok: every acknowledged write is in Redis.
//
// Thread-safety: all methods may be called from any thread; the synchronous ones (all but
// Check) return kBusy from a Check callback.
std::unique_ptr<Store> MakeRedisRecordStore(std::unique_ptr<RedisTransport> transport,
                                            RedisKeyLayout layout,
                                            const RedisRecordOptions& options, const Clock& clock);

}  // namespace greylight::store
