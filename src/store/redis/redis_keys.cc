#include "store/redis/redis_keys.h"

#include "policy/ip_address.h"
#include "store/store_config.h"

namespace greylight::store {
namespace {

constexpr int kIpv4TagBits = kClusterIpv4TagBits;
constexpr int kIpv6TagBits = kClusterIpv6TagBits;

std::string_view TablePrefix(Table table) {
  switch (table) {
    case Table::kTriplets:
      return "t:";
    case Table::kClients:
      return "c:";
    case Table::kTraps:
      return "g:";
    case Table::kReplies:
      return "r:";
  }
  return "";
}

// Escapes the glob characters of SCAN MATCH, so a prefix is matched literally.
std::string GlobEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string ReducedTag(std::string_view part) {
  // "10.0.0.1/32" (--lookup-by-host): the address before the prefix length.
  std::string_view address = part.substr(0, part.find('/'));
  if (auto ip = policy::IpAddress::Parse(address)) {
    return ip->Masked(ip->is_v6 ? kIpv6TagBits : kIpv4TagBits).ToPostgreyString();
  }
  return std::string(part);
}

// A reply key "<remote address>/<local user>": the remote address' domain, from the first
// '@' to the next '/'; a key without '@' (a --privacy digest) is its own tag. A '}' would end
// the tag early in RecordKey(), so it is dropped: the tag only has to be a function of the
// key.
std::string ReplyTag(std::string_view key) {
  std::string_view tag = key;
  if (size_t at = key.find('@'); at != std::string_view::npos) {
    tag = key.substr(at + 1);
    tag = tag.substr(0, tag.find('/'));
  }
  std::string out;
  out.reserve(tag.size());
  for (char c : tag) {
    if (c != '}') out.push_back(c);
  }
  return out;
}

}  // namespace

std::string ClusterHashTag(Table table, std::string_view key) {
  if (table == Table::kReplies) return ReplyTag(key);
  if (table == Table::kTriplets) {
    // The client part ends at the first '/', except a --lookup-by-host "<address>/<bits>".
    size_t slash = key.find('/');
    if (slash == std::string_view::npos) return ReducedTag(key);
    return ReducedTag(key.substr(0, slash));
  }
  return ReducedTag(key);
}

std::string RedisKeyLayout::Key(Table table, std::string_view key) const {
  std::string out;
  out.reserve(prefix_.size() + 2 + key.size() + (mode_ == Mode::kCluster ? 24 : 0));
  out.append(prefix_).append(TablePrefix(table));
  if (mode_ == Mode::kCluster) out.append("{").append(ClusterHashTag(table, key)).append("}");
  out.append(key);
  return out;
}

std::string RedisKeyLayout::ScanPattern(Table table) const {
  return GlobEscape(prefix_) + std::string(TablePrefix(table)) +
         (mode_ == Mode::kCluster ? "{*" : "*");
}

std::optional<std::string_view> RedisKeyLayout::RecordKey(Table table,
                                                          std::string_view redis_key) const {
  std::string_view head = TablePrefix(table);
  if (!redis_key.starts_with(prefix_)) return std::nullopt;
  redis_key.remove_prefix(prefix_.size());
  if (!redis_key.starts_with(head)) return std::nullopt;
  redis_key.remove_prefix(head.size());
  if (mode_ == Mode::kPlain) return redis_key;
  // "{tag}key": Redis hashes the text between the first '{' and the first '}' after it.
  if (!redis_key.starts_with('{')) return std::nullopt;
  size_t close = redis_key.find('}');
  if (close == std::string_view::npos) return std::nullopt;
  return redis_key.substr(close + 1);
}

}  // namespace greylight::store
