#include "store/redis/redis_cluster_store.h"

#include <fmt/format.h>

#include "store/redis/redis_cluster_router.h"
#include "store/redis/redis_records.h"
#include "store/redis/redis_scripts.h"

namespace greylight::store {

Result<std::unique_ptr<Store>> OpenRedisClusterStore(const RedisClusterOptions& options,
                                                     const Clock& clock) {
  if (options.store.prefix.find_first_of("{}") != std::string::npos) {
    return Status::InvalidArgument(fmt::format(
        "redis cluster: the key prefix '{}' must not contain '{{' or '}}'", options.store.prefix));
  }
  if (options.endpoint.kind != RedisEndpoint::Kind::kCluster) {
    return Status::InvalidArgument("redis cluster: not a redis+cluster:// endpoint");
  }
  RedisClusterRouterOptions router;
  router.seeds = options.endpoint;
  router.pipeline.timeout = options.store.timeout;
  router.pipeline.min_reconnect_delay = options.min_reconnect_delay;
  router.pipeline.max_reconnect_delay = options.max_reconnect_delay;
  router.pipeline.warning_interval = options.warning_interval;
  router.pipeline.scripts = AllScripts();
  if (router.pipeline.timeout.count() <= 0) {
    return Status::InvalidArgument("redis: the timeout must be positive");
  }
  auto opened = RedisClusterRouter::Open(std::move(router), clock);
  if (!opened.ok()) return opened.status();
  if (options.store.must_exist && !(*opened)->connected()) {
    return Status::Unavailable(
        fmt::format("redis cluster {} is unreachable", options.endpoint.Describe()));
  }
  RedisRecordOptions records;
  records.store = options.store;
  records.expiry_period = options.expiry_period;
  records.expiry_batch = options.expiry_batch;
  return MakeRedisRecordStore(std::move(opened.value()),
                              RedisKeyLayout(options.store.prefix, RedisKeyLayout::Mode::kCluster),
                              records, clock);
}

}  // namespace greylight::store
