#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace greylight::store {

// A host and TCP port. `host` is a name or an address; IPv6 addresses without brackets.
struct RedisAddress {
  std::string host;
  int port = 0;
  friend bool operator==(const RedisAddress&, const RedisAddress&) = default;
};

// Where a Redis store lives and how to log in, parsed from a --store URI.
struct RedisEndpoint {
  static constexpr int kDefaultPort = 6379;
  static constexpr int kDefaultSentinelPort = 26379;

  enum class Kind { kTcp, kUnix, kSentinel, kCluster };
  Kind kind = Kind::kTcp;
  // kTcp: the server (one entry). kSentinel: the sentinels, asked in this order.
  // kCluster: the seed nodes, asked in this order for the slot map.
  std::vector<RedisAddress> addresses;
  std::string unix_path;    // kUnix
  std::string master_name;  // kSentinel
  // AUTH for the data server; `user` needs Redis 6 ACLs. Empty password: no AUTH.
  std::string user;
  std::string password;
  // AUTH for the sentinels themselves (kSentinel only).
  std::string sentinel_user;
  std::string sentinel_password;
  int db = 0;

  // A description for log lines and errors, never containing a password.
  std::string Describe() const;
};

// Parses one of
//   redis://[user:password@]host[:port][/db]
//   redis+unix:///path/to/socket[?db=N&user=U&password=P]
//   redis+sentinel://host[:port][,host[:port]...]/mastername
//       [?db=N&user=U&password=P&sentinel_user=U&sentinel_password=P]
//   redis+cluster://host[:port][,host[:port]...][?user=U&password=P]
// User and password may be percent-encoded; IPv6 hosts go in brackets. Returns
// InvalidArgument with a message naming the problem for anything else, including unknown
// query parameters (a typo must not silently drop a password).
Result<RedisEndpoint> ParseRedisUri(std::string_view uri);

}  // namespace greylight::store
