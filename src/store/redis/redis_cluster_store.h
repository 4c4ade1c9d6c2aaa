#pragma once

#include <chrono>
#include <memory>

#include "store/redis/redis_store.h"
#include "store/redis/redis_uri.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/status.h"

namespace greylight::store {

// Options of the cluster store: those of one Redis (RedisOptions, with a kCluster endpoint
// whose addresses are the seed nodes).
using RedisClusterOptions = RedisOptions;

// Opens a Store in a Redis Cluster (redis+cluster://seed[,seed...]): the records of
// OpenRedisStore, named <prefix><letter>:{<tag>}<key> with the hash tag ClusterHashTag()
// (redis_keys.h), so every key one check touches is in one slot and the check stays one
// atomic script on one master (a greytrap entry of a domain-grouped client, whose tag is
// the client's address, is checked on its own slot first). Routing, redirections and
// failover: RedisClusterRouter (redis_cluster_router.h). ForEach and ExpireSome SCAN every
// master. Errors: kInvalidArgument for a prefix containing '{' or '}' (it would break the
// hash tag) or a configuration the nodes refuse; kUnavailable if store.must_exist and no
// node gives the slot map. `clock` must outlive the store.
Result<std::unique_ptr<Store>> OpenRedisClusterStore(const RedisClusterOptions& options,
                                                     const Clock& clock);

}  // namespace greylight::store
