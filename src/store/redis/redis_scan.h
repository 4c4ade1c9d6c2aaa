#pragma once

#include <optional>
#include <string>
#include <vector>

#include "store/redis/redis_transport.h"
#include "util/status.h"

namespace greylight::store {

// A resumable SCAN over every key matching a pattern on every server of a transport (the
// one server, or each master of a cluster in turn): the one SCAN loop of the Redis stores.
// As with any SCAN, a key may be returned twice (Redis rehashing, a slot moving between
// masters during the walk), and keys written meanwhile may or may not be returned.
//
// Thread-safety: none; one owner.
class KeyScan {
 public:
  // SCAN's COUNT hint: slots examined per round trip.
  static constexpr size_t kScanCount = 1000;

  explicit KeyScan(std::string pattern) : pattern_(std::move(pattern)) {}

  struct Page {
    std::vector<std::string> keys;
    bool cycle_done = false;  // this page ends a full pass over every server
  };
  // The next page of keys (possibly empty). After a page with cycle_done, the next call
  // starts a new pass, with the servers the transport names then.
  Result<Page> Next(RedisTransport& transport);

 private:
  std::string pattern_;
  std::vector<std::string> targets_;  // this pass's servers; empty: a pass starts
  size_t target_ = 0;
  std::string cursor_ = "0";
};

// The values of `redis_keys` now (one GET each, routed by key and pipelined): nullopt for a
// key deleted since, or holding something other than a string.
Result<std::vector<std::optional<std::string>>> ReadValues(
    RedisTransport& transport, const std::vector<std::string>& redis_keys);

}  // namespace greylight::store
