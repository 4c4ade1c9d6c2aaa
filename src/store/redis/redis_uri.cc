#include "store/redis/redis_uri.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <optional>

namespace greylight::store {
namespace {

// "<rest>?<query>" -> {rest, query}; the query is empty without a '?'.
std::pair<std::string_view, std::string_view> SplitQuery(std::string_view uri_tail) {
  size_t q = uri_tail.find('?');
  if (q == std::string_view::npos) return {uri_tail, {}};
  return {uri_tail.substr(0, q), uri_tail.substr(q + 1)};
}

constexpr std::string_view kTcpScheme = "redis://";
constexpr std::string_view kUnixScheme = "redis+unix://";
constexpr std::string_view kSentinelScheme = "redis+sentinel://";
constexpr std::string_view kClusterScheme = "redis+cluster://";
constexpr int kMaxPort = 65535;
// Redis has 16 databases unless configured otherwise; any sane configuration stays far
// below this, and the bound keeps SELECT's argument an int.
constexpr int kMaxDb = 1 << 20;

Status Invalid(std::string_view uri, std::string_view problem) {
  return Status::InvalidArgument(fmt::format("bad redis store URI '{}': {}", uri, problem));
}

std::optional<int> ParseInt(std::string_view text, int max) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0 ||
      value > max) {
    return std::nullopt;
  }
  return value;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    int high = HexDigit(text[i + 1]);
    int low = HexDigit(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

// Parses "host", "host:port", "[v6]" or "[v6]:port".
Result<RedisAddress> ParseAddress(std::string_view uri, std::string_view text, int default_port) {
  RedisAddress address;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return Invalid(uri, "unterminated '[' in host");
    address.host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Invalid(uri, fmt::format("unexpected '{}' after host", rest));
      port_text = rest.substr(1);
      if (port_text.empty()) return Invalid(uri, "empty port");
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon != std::string_view::npos) {
      if (text.find(':') != colon) return Invalid(uri, "IPv6 addresses must be in brackets");
      port_text = text.substr(colon + 1);
      if (port_text.empty()) return Invalid(uri, "empty port");
      text = text.substr(0, colon);
    }
    address.host = std::string(text);
  }
  if (address.host.empty()) return Invalid(uri, "missing host");
  address.port = default_port;
  if (!port_text.empty()) {
    auto port = ParseInt(port_text, kMaxPort);
    if (!port || *port == 0) return Invalid(uri, fmt::format("bad port '{}'", port_text));
    address.port = *port;
  }
  return address;
}

Status SetDb(std::string_view uri, std::string_view text, RedisEndpoint& endpoint) {
  auto db = ParseInt(text, kMaxDb);
  if (!db) return Invalid(uri, fmt::format("bad database number '{}'", text));
  endpoint.db = *db;
  return Status::Ok();
}

// Applies "name=value&..." to `endpoint`; `allowed` lists the names this scheme accepts.
Status ApplyQuery(std::string_view uri, std::string_view query,
                  std::initializer_list<std::string_view> allowed, bool db_given,
                  RedisEndpoint& endpoint) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Invalid(uri, fmt::format("query parameter '{}' has no value", item));
    }
    std::string_view name = item.substr(0, eq);
    auto value = PercentDecode(item.substr(eq + 1));
    if (!value) return Invalid(uri, fmt::format("bad percent-encoding in '{}'", name));
    bool known = false;
    for (std::string_view a : allowed) known = known || a == name;
    if (!known) {
      return Invalid(uri, fmt::format("unknown query parameter '{}' (accepted: {})", name,
                                      fmt::join(allowed, ", ")));
    }
    if (name == "db") {
      if (db_given) return Invalid(uri, "database given twice");
      db_given = true;
      if (Status s = SetDb(uri, *value, endpoint); !s.ok()) return s;
    } else if (name == "user") {
      endpoint.user = std::move(*value);
    } else if (name == "password") {
      endpoint.password = std::move(*value);
    } else if (name == "sentinel_user") {
      endpoint.sentinel_user = std::move(*value);
    } else if (name == "sentinel_password") {
      endpoint.sentinel_password = std::move(*value);
    }
  }
  return Status::Ok();
}

Result<RedisEndpoint> ParseTcp(std::string_view uri) {
  RedisEndpoint endpoint;
  endpoint.kind = RedisEndpoint::Kind::kTcp;
  auto [rest, query] = SplitQuery(uri.substr(kTcpScheme.size()));
  std::string_view path;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    auto user = PercentDecode(userinfo.substr(0, colon));
    auto password = PercentDecode(colon == std::string_view::npos ? std::string_view()
                                                                  : userinfo.substr(colon + 1));
    if (!user || !password) return Invalid(uri, "bad percent-encoding in user or password");
    if (colon == std::string_view::npos) {
      // "redis://secret@host": a lone userinfo field is the password, as redis-cli reads it.
      endpoint.password = std::move(*user);
    } else {
      endpoint.user = std::move(*user);
      endpoint.password = std::move(*password);
    }
  }
  auto address = ParseAddress(uri, rest, RedisEndpoint::kDefaultPort);
  if (!address.ok()) return address.status();
  endpoint.addresses.push_back(std::move(address.value()));
  bool db_given = false;
  if (!path.empty()) {
    if (Status s = SetDb(uri, path, endpoint); !s.ok()) return s;
    db_given = true;
  }
  if (Status s = ApplyQuery(uri, query, {"db", "user", "password"}, db_given, endpoint); !s.ok()) {
    return s;
  }
  return endpoint;
}

Result<RedisEndpoint> ParseUnix(std::string_view uri) {
  RedisEndpoint endpoint;
  endpoint.kind = RedisEndpoint::Kind::kUnix;
  auto [rest, query] = SplitQuery(uri.substr(kUnixScheme.size()));
  if (rest.empty()) return Invalid(uri, "missing socket path (redis+unix:///path/to/socket)");
  if (rest.front() != '/') {
    return Invalid(uri, "the socket path must be absolute (redis+unix:///path/to/socket)");
  }
  auto path = PercentDecode(rest);
  if (!path) return Invalid(uri, "bad percent-encoding in the socket path");
  endpoint.unix_path = std::move(*path);
  if (Status s = ApplyQuery(uri, query, {"db", "user", "password"}, false, endpoint); !s.ok()) {
    return s;
  }
  return endpoint;
}

Result<RedisEndpoint> ParseSentinel(std::string_view uri) {
  RedisEndpoint endpoint;
  endpoint.kind = RedisEndpoint::Kind::kSentinel;
  auto [rest, query] = SplitQuery(uri.substr(kSentinelScheme.size()));
  size_t slash = rest.find('/');
  std::string_view hosts = rest.substr(0, slash);
  std::string_view master =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  if (hosts.find('@') != std::string_view::npos) {
    return Invalid(uri,
                   "credentials go in the query: ?user=&password= for the master, "
                   "?sentinel_user=&sentinel_password= for the sentinels");
  }
  if (hosts.empty()) return Invalid(uri, "missing sentinel host");
  while (true) {
    size_t comma = hosts.find(',');
    auto address = ParseAddress(uri, hosts.substr(0, comma), RedisEndpoint::kDefaultSentinelPort);
    if (!address.ok()) return address.status();
    endpoint.addresses.push_back(std::move(address.value()));
    if (comma == std::string_view::npos) break;
    hosts = hosts.substr(comma + 1);
  }
  if (master.empty()) {
    return Invalid(uri, "missing master name (redis+sentinel://host:port/mastername)");
  }
  if (master.find('/') != std::string_view::npos) {
    return Invalid(uri, "the master name may not contain '/' (give the database as ?db=N)");
  }
  auto name = PercentDecode(master);
  if (!name) return Invalid(uri, "bad percent-encoding in the master name");
  endpoint.master_name = std::move(*name);
  if (Status s =
          ApplyQuery(uri, query, {"db", "user", "password", "sentinel_user", "sentinel_password"},
                     false, endpoint);
      !s.ok()) {
    return s;
  }
  return endpoint;
}

// "redis+cluster://host:port[,host:port...][?user=U&password=P]": seed nodes, asked for the
// slot map; a cluster has one database, so no db.
Result<RedisEndpoint> ParseCluster(std::string_view uri) {
  RedisEndpoint endpoint;
  endpoint.kind = RedisEndpoint::Kind::kCluster;
  auto [hosts, query] = SplitQuery(uri.substr(kClusterScheme.size()));
  if (hosts.find('@') != std::string_view::npos) {
    return Invalid(uri, "credentials go in the query: ?user=&password=");
  }
  if (hosts.find('/') != std::string_view::npos) {
    return Invalid(uri, "a cluster has no database number or path");
  }
  if (hosts.empty()) return Invalid(uri, "missing seed node host");
  while (true) {
    size_t comma = hosts.find(',');
    auto address = ParseAddress(uri, hosts.substr(0, comma), RedisEndpoint::kDefaultPort);
    if (!address.ok()) return address.status();
    endpoint.addresses.push_back(std::move(address.value()));
    if (comma == std::string_view::npos) break;
    hosts = hosts.substr(comma + 1);
  }
  if (Status s = ApplyQuery(uri, query, {"user", "password"}, false, endpoint); !s.ok()) return s;
  return endpoint;
}

std::string FormatAddress(const RedisAddress& address) {
  if (address.host.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", address.host, address.port);
  }
  return fmt::format("{}:{}", address.host, address.port);
}

}  // namespace

Result<RedisEndpoint> ParseRedisUri(std::string_view uri) {
  if (uri.starts_with(kTcpScheme)) return ParseTcp(uri);
  if (uri.starts_with(kUnixScheme)) return ParseUnix(uri);
  if (uri.starts_with(kSentinelScheme)) return ParseSentinel(uri);
  if (uri.starts_with(kClusterScheme)) return ParseCluster(uri);
  return Invalid(uri, "expected redis://, redis+unix://, redis+sentinel:// or redis+cluster://");
}

std::string RedisEndpoint::Describe() const {
  std::string user_part = user.empty() ? "" : user + "@";
  switch (kind) {
    case Kind::kTcp:
      return fmt::format("redis://{}{}/{}", user_part,
                         addresses.empty() ? "" : FormatAddress(addresses.front()), db);
    case Kind::kUnix:
      return fmt::format("redis+unix://{}?db={}", unix_path, db);
    case Kind::kSentinel: {
      std::vector<std::string> hosts;
      for (const RedisAddress& address : addresses) hosts.push_back(FormatAddress(address));
      return fmt::format("redis+sentinel://{}/{}?db={}", fmt::join(hosts, ","), master_name, db);
    }
    case Kind::kCluster: {
      std::vector<std::string> hosts;
      for (const RedisAddress& address : addresses) hosts.push_back(FormatAddress(address));
      return fmt::format("redis+cluster://{}{}", user_part, fmt::join(hosts, ","));
    }
  }
  return "redis";
}

}  // namespace greylight::store
