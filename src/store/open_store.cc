#include "store/open_store.h"

#include <fmt/format.h>

#include <optional>

#include "store/lmdb/lmdb_store.h"
#include "store/redis/redis_cluster_store.h"
#include "store/redis/redis_store.h"
#include "store/redis/redis_uri.h"

namespace greylight::store {
namespace {

constexpr std::string_view kLmdbScheme = "lmdb:";

// The directory of an "lmdb:" URI: its path, or config.dbdir when it has none.
Result<std::filesystem::path> LmdbDir(const StoreConfig& config) {
  std::string_view path = std::string_view(config.uri).substr(kLmdbScheme.size());
  // "lmdb:///abs" names "/abs"; "lmdb://host/..." names no local directory.
  if (path.starts_with("///")) {
    path.remove_prefix(2);
  } else if (path.starts_with("//")) {
    return Status::InvalidArgument(fmt::format(
        "bad store URI '{}': lmdb: takes a path, not a host (lmdb:/path/to/dir)", config.uri));
  }
  std::filesystem::path dir = path.empty() ? config.dbdir : std::filesystem::path(path);
  if (dir.empty()) {
    return Status::InvalidArgument(
        fmt::format("bad store URI '{}': no directory (give lmdb:/path or --dbdir)", config.uri));
  }
  return dir;
}

Result<std::unique_ptr<Store>> OpenLmdb(const StoreConfig& config, const Clock& clock) {
  auto dir = LmdbDir(config);
  if (!dir.ok()) return dir.status();
  LmdbOptions options;
  options.store = config;
  options.store.dbdir = *dir;
  return OpenLmdbStore(options, clock);
}

Result<std::unique_ptr<Store>> OpenRedis(const StoreConfig& config, const Clock& clock) {
  auto endpoint = ParseRedisUri(config.uri);
  if (!endpoint.ok()) return endpoint.status();
  if (config.timeout.count() <= 0) {
    return Status::InvalidArgument(
        fmt::format("store timeout must be positive, not {} ms", config.timeout.count()));
  }
  RedisOptions options;
  options.store = config;
  options.endpoint = std::move(endpoint.value());
  if (options.endpoint.kind == RedisEndpoint::Kind::kCluster) {
    return OpenRedisClusterStore(options, clock);
  }
  return OpenRedisStore(options, clock);
}

}  // namespace

Result<std::unique_ptr<Store>> OpenStore(const StoreConfig& config, const Clock& clock) {
  if (config.uri.starts_with(kLmdbScheme)) return OpenLmdb(config, clock);
  // Any redis* scheme goes to the Redis parser, whose errors say what is accepted.
  if (config.uri.starts_with("redis")) return OpenRedis(config, clock);
  if (config.uri.empty()) return Status::InvalidArgument("empty store URI");
  return Status::InvalidArgument(fmt::format(
      "unknown store '{}': expected lmdb:[PATH], redis://, redis+unix://, redis+sentinel:// or "
      "redis+cluster://",
      config.uri));
}

bool IsClusterUri(const std::string& uri) {
  if (!uri.starts_with("redis")) return false;
  auto endpoint = ParseRedisUri(uri);
  return endpoint.ok() && endpoint->kind == RedisEndpoint::Kind::kCluster;
}

std::string StoreIdentity(const StoreConfig& config) {
  if (!config.uri.starts_with(kLmdbScheme)) return config.uri;
  auto dir = LmdbDir(config);
  if (!dir.ok()) return config.uri;
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::weakly_canonical(*dir, ec);
  return std::string(kLmdbScheme) + (ec ? dir->lexically_normal().string() : canonical.string());
}

}  // namespace greylight::store
