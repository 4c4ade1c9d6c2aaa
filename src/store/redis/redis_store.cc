#include "store/redis/redis_store.h"

#include <fmt/format.h>

#include "store/redis/redis_pipeline.h"
#include "store/redis/redis_records.h"
#include "store/redis/redis_scripts.h"
#include "store/redis/redis_transport.h"

namespace greylight::store {

Result<std::unique_ptr<Store>> OpenRedisStore(const RedisOptions& options, const Clock& clock) {
  RedisPipelineOptions pipeline;
  pipeline.endpoint = options.endpoint;
  pipeline.timeout = options.store.timeout;
  pipeline.min_reconnect_delay = options.min_reconnect_delay;
  pipeline.max_reconnect_delay = options.max_reconnect_delay;
  pipeline.warning_interval = options.warning_interval;
  pipeline.scripts = AllScripts();
  auto opened = RedisPipeline::Open(std::move(pipeline), clock);
  if (!opened.ok()) return opened.status();
  if (options.store.must_exist && !(*opened)->connected()) {
    return Status::Unavailable(fmt::format("redis {} is unreachable: {}",
                                           options.endpoint.Describe(), (*opened)->last_error()));
  }
  RedisRecordOptions records;
  records.store = options.store;
  records.expiry_period = options.expiry_period;
  records.expiry_batch = options.expiry_batch;
  return MakeRedisRecordStore(std::make_unique<SingleServerTransport>(std::move(opened.value())),
                              RedisKeyLayout(options.store.prefix, RedisKeyLayout::Mode::kPlain),
                              records, clock);
}

}  // namespace greylight::store
