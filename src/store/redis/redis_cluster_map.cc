#include "store/redis/redis_cluster_map.h"

#include <charconv>

namespace greylight::store {
namespace {

uint16_t Crc16(std::string_view data) {
  uint16_t crc = 0;
  for (char c : data) {
    crc ^= static_cast<uint16_t>(static_cast<uint8_t>(c)) << 8;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

std::optional<RedisAddress> ParseHostPort(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  RedisAddress address;
  address.host = std::string(text.substr(0, colon));
  std::string_view port = text.substr(colon + 1);
  // "host:port@cport" in some versions' replies: the bus port is not ours.
  port = port.substr(0, port.find('@'));
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), address.port);
  if (ec != std::errc() || end != port.data() + port.size()) return std::nullopt;
  return address;
}

}  // namespace

int KeySlot(std::string_view key) {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) & (kClusterSlots - 1);
}

Result<ClusterSlotMap> ParseClusterSlots(const RedisReply& reply, const RedisAddress& asked) {
  if (reply.type != RedisReply::Type::kArray) {
    return Status::IoError("redis cluster: CLUSTER SLOTS: " +
                           (reply.is_error() ? reply.str : std::string("not an array")));
  }
  ClusterSlotMap map;
  for (const RedisReply& range : reply.elements) {
    if (range.type != RedisReply::Type::kArray || range.elements.size() < 3 ||
        range.elements[0].type != RedisReply::Type::kInteger ||
        range.elements[1].type != RedisReply::Type::kInteger ||
        range.elements[2].type != RedisReply::Type::kArray ||
        range.elements[2].elements.size() < 2 ||
        range.elements[2].elements[1].type != RedisReply::Type::kInteger) {
      return Status::IoError("redis cluster: malformed CLUSTER SLOTS reply");
    }
    long long first = range.elements[0].integer, last = range.elements[1].integer;
    if (first < 0 || last >= kClusterSlots || first > last) {
      return Status::IoError("redis cluster: bad slot range in CLUSTER SLOTS");
    }
    RedisAddress master{range.elements[2].elements[0].str,
                        static_cast<int>(range.elements[2].elements[1].integer)};
    if (master.host.empty() || master.host == "?") master.host = asked.host;
    int16_t index = -1;
    for (size_t i = 0; i < map.masters.size(); ++i) {
      if (map.masters[i] == master) index = static_cast<int16_t>(i);
    }
    if (index < 0) {
      index = static_cast<int16_t>(map.masters.size());
      map.masters.push_back(master);
    }
    for (long long slot = first; slot <= last; ++slot) map.owner[static_cast<size_t>(slot)] = index;
  }
  return map;
}

std::optional<Redirection> ParseRedirection(const RedisReply& reply) {
  Redirection redirection;
  std::string_view text = reply.str;
  if (reply.IsError("MOVED")) {
    text.remove_prefix(6);
  } else if (reply.IsError("ASK")) {
    redirection.ask = true;
    text.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  size_t space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  std::string_view slot = text.substr(0, space);
  auto [end, ec] = std::from_chars(slot.data(), slot.data() + slot.size(), redirection.slot);
  if (ec != std::errc() || redirection.slot < 0 || redirection.slot >= kClusterSlots) {
    return std::nullopt;
  }
  auto to = ParseHostPort(text.substr(space + 1));
  if (!to || to->host.empty()) return std::nullopt;
  redirection.to = std::move(*to);
  return redirection;
}

}  // namespace greylight::store
