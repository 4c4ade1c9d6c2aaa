#include "tools/tool_store.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>
#include <vector>

#include "store/lmdb/lmdb_store.h"
#include "store/open_store.h"

namespace greylight::tools {
namespace {

constexpr std::string_view kLmdbScheme = "lmdb:";

// The dbdir of an "lmdb:" URI; nullopt if `uri` is not one.
std::optional<std::filesystem::path> LmdbDir(std::string_view uri,
                                             const cli::PolicyConfig& config) {
  if (!uri.starts_with(kLmdbScheme)) return std::nullopt;
  std::string_view path = uri.substr(kLmdbScheme.size());
  // "lmdb:///abs" is tolerated as "/abs"; "lmdb://host/..." names no local directory.
  if (path.starts_with("///")) {
    path.remove_prefix(2);
  } else if (path.starts_with("//")) {
    return std::nullopt;
  }
  if (path.empty()) return config.dbdir;
  return std::filesystem::path(path);
}

// LMDB's files in a dbdir: the data file and the lock file mdb_env_open creates beside it.
std::vector<std::filesystem::path> LmdbFiles(const std::filesystem::path& dir) {
  std::filesystem::path data = dir / store::LmdbStore::kDataFile;
  return {data, std::filesystem::path(data.string() + "-lock")};
}

// Why: greylightd runs as its own user (greylight) after dropping privileges, while an
// admin typically runs `import-postgrey` or `migrate` as root into /var/lib/greylight,
// a directory that user owns. Files created there by root with mode 0600 would lock the
// daemon out, so a store the tool has just created goes to the directory's owner.
Status HandOverToDirectoryOwner(const std::filesystem::path& dir) {
  if (::geteuid() != 0) return Status::Ok();
  struct stat dir_stat;
  if (::stat(dir.c_str(), &dir_stat) != 0) {
    return Status::IoError(fmt::format("can't stat {}: {}", dir.string(), std::strerror(errno)));
  }
  if (dir_stat.st_uid == 0 && dir_stat.st_gid == 0) return Status::Ok();
  for (const std::filesystem::path& file : LmdbFiles(dir)) {
    if (::lchown(file.c_str(), dir_stat.st_uid, dir_stat.st_gid) != 0 && errno != ENOENT) {
      return Status::IoError(fmt::format("can't hand {} to the owner of {}: {}", file.string(),
                                         dir.string(), std::strerror(errno)));
    }
  }
  return Status::Ok();
}

}  // namespace

std::string DefaultStoreUri(const cli::PolicyConfig& config) {
  return std::string(kLmdbScheme) + config.dbdir.string();
}

Result<std::unique_ptr<store::Store>> OpenToolStore(std::string_view uri,
                                                    const cli::PolicyConfig& config, StoreUse use) {
  if (uri.starts_with("redis://") || uri.starts_with("redis+unix://") ||
      uri.starts_with("redis+sentinel://")) {
    store::StoreConfig redis = config.store;
    redis.uri = std::string(uri);
    redis.timing = config.timing;
    redis.background_expiry = false;
    auto opened = store::OpenStore(redis);
    if (!opened.ok()) return opened.status();
    // The store connects in the background; a tool wants an unreachable server reported
    // now, not as empty results.
    if (auto probe = (*opened)->Get(store::Table::kClients, "greylight-tool-probe"); !probe.ok()) {
      return Status::Unavailable(fmt::format("store {}: {}", uri, probe.status().message()));
    }
    return opened;
  }
  std::optional<std::filesystem::path> dir = LmdbDir(uri, config);
  if (!dir) {
    return Status::InvalidArgument(fmt::format(
        "store '{}': not a store URI (lmdb:, lmdb:/path/to/dbdir, redis://host:port/db, "
        "redis+unix:///path, redis+sentinel://host:port/master)",
        uri));
  }
  std::error_code ec;
  std::filesystem::path data = *dir / store::LmdbStore::kDataFile;
  const bool existed = std::filesystem::exists(data, ec);
  if (use == StoreUse::kExisting) {
    if (!existed) {
      return Status::NotFound(fmt::format("no greylight store at {}: {} does not exist{}",
                                          dir->string(), data.string(),
                                          ec ? fmt::format(" ({})", ec.message()) : ""));
    }
  }
  store::LmdbOptions options;
  options.dbdir = *dir;
  options.timing = config.timing;
  // Every Put/Delete is committed durably before it returns; no background thread.
  options.commit_interval = std::chrono::milliseconds(0);
  options.background_expiry = false;
  options.exclusive = false;  // greylightd may hold the dbdir lock: work beside it
  auto opened = store::LmdbStore::Open(options);
  if (!opened.ok()) return opened.status();
  if (!existed) {
    if (Status handed = HandOverToDirectoryOwner(*dir); !handed.ok()) return handed;
  }
  return std::unique_ptr<store::Store>(std::move(opened.value()));
}

std::string StoreIdentity(std::string_view uri, const cli::PolicyConfig& config) {
  std::optional<std::filesystem::path> dir = LmdbDir(uri, config);
  if (!dir) return std::string(uri);
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::weakly_canonical(*dir, ec);
  return std::string(kLmdbScheme) + (ec ? dir->lexically_normal().string() : canonical.string());
}

}  // namespace greylight::tools
