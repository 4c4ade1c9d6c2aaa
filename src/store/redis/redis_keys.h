#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "store/store.h"

namespace greylight::store {

// Where a record lives in Redis: the one place that knows the key names.
//   plain (redis://, unix, sentinel):  <prefix><letter>:<key>
//   cluster (redis+cluster://):        <prefix><letter>:{<tag>}<key>
// with letter t (triplets), c (clients), g (greytrap list) or r (reply records) and, on a
// cluster, the hash tag ClusterHashTag(table, key), so that the triplet, client and trap keys
// of one check hash to one slot.
class RedisKeyLayout {
 public:
  enum class Mode { kPlain, kCluster };
  RedisKeyLayout(std::string prefix, Mode mode) : prefix_(std::move(prefix)), mode_(mode) {}

  // The Redis key of record `key` of `table`.
  std::string Key(Table table, std::string_view key) const;
  // The SCAN MATCH pattern that matches every Redis key of `table` (and possibly others,
  // which RecordKey() rejects).
  std::string ScanPattern(Table table) const;
  // The record key held by `redis_key`, a key SCAN returned for ScanPattern(table);
  // nullopt if it is not a key of `table` in this layout.
  std::optional<std::string_view> RecordKey(Table table, std::string_view redis_key) const;

  Mode mode() const { return mode_; }
  const std::string& prefix() const { return prefix_; }

 private:
  std::string prefix_;
  Mode mode_;
};

// The hash tag of a record on a cluster: the client part that every key of one check
// shares, so the check is one script on one node (see docs/design.md, "Redis Cluster"):
//  * a triplet key "<client part>/<sender>/<recipient>": its client part, reduced as below;
//  * a client or trap key: the key itself, reduced as below;
//  * a reply key "<remote address>/<local user>": the remote address' domain (without any
//    '}'), or the whole key if it has no '@' (--privacy). It holds no client, so it has its
//    own slot: a check reads it by a separate call (docs/design.md, "Redis Cluster");
//  * reduced: an IPv4 address or network to its /16 ("192.0.0.0"), an IPv6 one to its /32
//    ("2001:DB8:0:0:0:0:0:0"), so that a client's address, its --ipv4cidr/--ipv6cidr
//    network and its --lookup-by-host key give one tag whatever the prefix lengths (down to
//    /16 and /32); anything else ("domain:example.com", a --privacy digest) stays as is.
std::string ClusterHashTag(Table table, std::string_view key);

}  // namespace greylight::store
