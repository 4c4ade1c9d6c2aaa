#include "store/open_store.h"

#include <fmt/format.h>

#include "store/lmdb/lmdb_store.h"
#include "store/redis/redis_store.h"

namespace greylight::store {
namespace {

constexpr std::string_view kLmdbScheme = "lmdb:";

Result<std::unique_ptr<Store>> OpenLmdb(const StoreConfig& config) {
  std::string_view path = std::string_view(config.uri).substr(kLmdbScheme.size());
  if (path.starts_with("//")) {
    return Status::InvalidArgument(fmt::format(
        "bad store URI '{}': lmdb: takes a path, not a host (lmdb:/path/to/dir)", config.uri));
  }
  LmdbOptions options;
  options.dbdir = path.empty() ? config.dbdir : std::filesystem::path(path);
  if (options.dbdir.empty()) {
    return Status::InvalidArgument(
        fmt::format("bad store URI '{}': no directory (give lmdb:/path or --dbdir)", config.uri));
  }
  options.timing = config.timing;
  options.commit_interval = config.commit_interval;
  options.background_expiry = config.background_expiry;
  options.exclusive = config.exclusive;
  options.clock = config.clock;
  auto store = LmdbStore::Open(std::move(options));
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(std::move(store.value()));
}

Result<std::unique_ptr<Store>> OpenRedis(const StoreConfig& config) {
  auto endpoint = ParseRedisUri(config.uri);
  if (!endpoint.ok()) return endpoint.status();
  if (config.timeout.count() <= 0) {
    return Status::InvalidArgument(
        fmt::format("store timeout must be positive, not {} ms", config.timeout.count()));
  }
  RedisOptions options;
  options.endpoint = std::move(endpoint.value());
  options.prefix = config.prefix;
  options.timing = config.timing;
  options.timeout = config.timeout;
  options.background_expiry = config.background_expiry;
  options.clock = config.clock;
  auto store = RedisStore::Open(std::move(options));
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(std::move(store.value()));
}

}  // namespace

Result<std::unique_ptr<Store>> OpenStore(const StoreConfig& config) {
  if (config.uri.starts_with(kLmdbScheme)) return OpenLmdb(config);
  // Any redis* scheme goes to the Redis parser, whose errors say what is accepted.
  if (config.uri.starts_with("redis")) return OpenRedis(config);
  if (config.uri.empty()) return Status::InvalidArgument("empty store URI");
  return Status::InvalidArgument(fmt::format(
      "unknown store '{}': expected lmdb:[PATH], redis://, redis+unix:// or redis+sentinel://",
      config.uri));
}

}  // namespace greylight::store
