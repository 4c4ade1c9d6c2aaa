#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/redis/redis_connection.h"
#include "store/redis/redis_uri.h"
#include "util/status.h"

namespace greylight::store {

// Redis Cluster's key space, without I/O: slots, the slot map, redirections.

inline constexpr int kClusterSlots = 16384;

// The slot of a Redis key: CRC16 (XMODEM) of its hash tag (the text between the first '{'
// and the first '}' after it, when not empty) or of the whole key, modulo 16384.
int KeySlot(std::string_view key);

// Which master serves each slot; an empty host means "no master known".
struct ClusterSlotMap {
  std::array<int16_t, kClusterSlots> owner;  // index into masters, -1 for none
  std::vector<RedisAddress> masters;
  ClusterSlotMap() { owner.fill(-1); }
  const RedisAddress* MasterOf(int slot) const {
    int16_t index = owner[static_cast<size_t>(slot)];
    return index < 0 ? nullptr : &masters[static_cast<size_t>(index)];
  }
};

// Builds the map from a CLUSTER SLOTS reply; a node listed with an empty host is
// `asked` (the node that answered). kIoError for a reply of the wrong shape.
Result<ClusterSlotMap> ParseClusterSlots(const RedisReply& reply, const RedisAddress& asked);

// A redirection error reply: "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>".
struct Redirection {
  bool ask = false;  // ASK: this request only, after ASKING; MOVED: the slot has moved
  int slot = 0;
  RedisAddress to;
};
std::optional<Redirection> ParseRedirection(const RedisReply& reply);

}  // namespace greylight::store
