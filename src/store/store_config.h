#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include "policy/greylist_state.h"

namespace greylight::store {

// The shortest prefixes a Redis Cluster's hash tag keeps of a client address: every IPv4
// network key from --ipv4cidr=16 up and every IPv6 one from --ipv6cidr=32 up falls in the
// tag of its clients' addresses, so the keys of one check share a slot. Shorter prefixes
// (and --privacy digests) cannot be used with a cluster.
inline constexpr int kClusterIpv4TagBits = 16;
inline constexpr int kClusterIpv6TagBits = 32;

// Everything needed to open any backend, as the --store family of options gives it. This
// struct is the one owner of each setting: the backends' option structs embed it, and the
// daemon's and the tool's configurations hold one.
struct StoreConfig {
  static constexpr std::string_view kDefaultUri = "lmdb:";
  static constexpr std::string_view kDefaultPrefix = "greylight:";
  static constexpr std::chrono::milliseconds kDefaultTimeout{200};
  static constexpr std::chrono::milliseconds kDefaultCommitInterval{50};
  static constexpr std::chrono::milliseconds kDefaultPendingCommitInterval{1000};

  // "lmdb:" (the database in `dbdir`), "lmdb:/path", "redis://[user:password@]host:port[/db]",
  // "redis+unix:///path/to/socket[?db=N]",
  // "redis+sentinel://host:port[,host:port...]/mastername[?db=N&password=...]" or
  // "redis+cluster://host:port[,host:port...][?password=...]".
  std::string uri{kDefaultUri};
  // LMDB: the directory of the database (from the URI, else --dbdir).
  std::filesystem::path dbdir;
  policy::GreylistTiming timing;
  // Redis: keys are <prefix><table letter>:<key>, so several sites can share one Redis
  // (--store-prefix). Two prefixes must not be prefixes of each other's keys (keep a
  // trailing ':' and they never are).
  std::string prefix{kDefaultPrefix};
  // Redis: bounds each connection attempt and each round trip (--store-timeout). A request
  // that cannot be answered within it fails, and the caller fails open.
  std::chrono::milliseconds timeout = kDefaultTimeout;
  // LMDB group commit (--commit-interval): updates are acknowledged at once and committed
  // (with fsync) together every interval, so a crash loses at most the last interval of
  // updates and never corrupts the database. Zero commits every request durably before
  // answering it, as postgrey does.
  std::chrono::milliseconds commit_interval = kDefaultCommitInterval;
  // LMDB: triplets still pending (greylisted, not yet passed) are committed this often
  // instead (--pending-commit-interval; never more often than commit_interval). New
  // triplets land on random pages of the B-tree, one dirty page each: committing them in
  // bigger batches writes each page once for many inserts. A crash loses at most this
  // window of pending triplets, whose senders are then greylisted once more on their retry;
  // passed triplets, auto-whitelist and trap records keep the commit_interval window.
  std::chrono::milliseconds pending_commit_interval = kDefaultPendingCommitInterval;
  // LMDB: hold the dbdir lock, so only one daemon owns the dbdir. Tools that work beside a
  // running daemon leave it off.
  bool exclusive = true;
  // Expire records in the background (LMDB commit thread, Redis sweep). Tools that only copy
  // or inspect records turn it off.
  bool background_expiry = true;
  // The store must already exist (the tool's reading commands): LMDB fails with kNotFound
  // instead of creating an empty database; Redis fails with kUnavailable unless the server
  // answers now (rather than connecting in the background).
  bool must_exist = false;
  // LMDB: files created by a process running as root are handed to the owner of the
  // directory (the tool writing into the daemon's dbdir as root).
  bool hand_new_files_to_dir_owner = false;
};

}  // namespace greylight::store
