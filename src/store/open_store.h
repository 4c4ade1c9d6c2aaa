#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "policy/greylist_state.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/status.h"

namespace greylight::store {

// Everything needed to open any backend, as the --store family of options gives it.
struct StoreConfig {
  static constexpr std::string_view kDefaultUri = "lmdb:";
  static constexpr std::string_view kDefaultPrefix = "greylight:";
  static constexpr std::chrono::milliseconds kDefaultTimeout{200};
  static constexpr std::chrono::milliseconds kDefaultCommitInterval{50};

  // "lmdb:" (the database in `dbdir`), "lmdb:/path", "redis://[user:password@]host:port[/db]",
  // "redis+unix:///path/to/socket[?db=N]" or
  // "redis+sentinel://host:port[,host:port...]/mastername[?db=N&password=...]".
  std::string uri{kDefaultUri};
  std::filesystem::path dbdir;  // LMDB: used when the URI gives no path
  policy::GreylistTiming timing;
  std::string prefix{kDefaultPrefix};                   // Redis: key prefix (--store-prefix)
  std::chrono::milliseconds timeout = kDefaultTimeout;  // Redis: connect and round trip
  std::chrono::milliseconds commit_interval = kDefaultCommitInterval;  // LMDB group commit
  bool exclusive = true;  // LMDB: hold the dbdir lock (a daemon); tools leave it off
  // Expire records in the background (LMDB commit thread, Redis sweep). Tools that only copy
  // or inspect records turn it off.
  bool background_expiry = true;
  const Clock* clock = nullptr;  // nullptr: the system clock; must outlive the store
};

// Opens the backend `config.uri` names. Errors: kInvalidArgument naming the problem for a
// malformed or unknown URI, a missing dbdir, a non-positive timeout or a configuration the
// Redis server refuses; kBusy when another daemon holds the LMDB dbdir; kIoError when the
// LMDB environment cannot be opened. An unreachable Redis is not an error: the store
// reconnects in the background and fails requests meanwhile (see RedisStore).
Result<std::unique_ptr<Store>> OpenStore(const StoreConfig& config);

}  // namespace greylight::store
