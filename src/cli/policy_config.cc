#include "cli/policy_config.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "policy/reply_text.h"

namespace greylight::cli {
namespace {

using Arity = OptionSpec::Arity;

constexpr OptionSpec kPolicyOptions[] = {
    {"--store", Arity::kValue, "URI", "lmdb:",
     "where the state lives: lmdb: (the database in --dbdir), lmdb:/path, "
     "redis://[user:password@]host:port[/db], redis+unix:///path[?db=N], "
     "redis+sentinel://host:port[,host:port...]/mastername[?db=N&password=...] or "
     "redis+cluster://host:port[,host:port...][?password=...]",
     "greylight"},
    {"--store-prefix", Arity::kValue, "PREFIX", store::StoreConfig::kDefaultPrefix,
     "Redis key prefix, to keep several sites apart in one Redis", "greylight"},
    {"--store-timeout", Arity::kValue, "MS", "200",
     "Redis connect and round-trip timeout; slower answers count as store errors", "greylight", 1,
     60000},
    {"--dbdir", Arity::kValue, "PATH", "/var/lib/greylight",
     "directory of the LMDB database (the default store)", "postgrey"},
    {"--delay", Arity::kValue, "SECONDS", "300", "greylist a new triplet for this many seconds",
     "postgrey", 1, 86400},
    {"--max-age", Arity::kValue, "DAYS", "35",
     "forget triplets and auto-whitelisted clients not seen for DAYS days", "postgrey", 1, 3650},
    {"--retry-window", Arity::kValue, "N|Nh", "2",
     "a retry later than N days (or N hours with 'h') after the first attempt starts over",
     "postgrey"},
    {"--greylist-action", Arity::kValue, "ACTION", "DEFER_IF_PERMIT",
     "Postfix access(5) action used when greylisting", "postgrey"},
    {"--greylist-text", Arity::kValue, "TEXT",
     "Greylisted, see http://postgrey.schweikert.ch/help/%r.html",
     "reply text when greylisting; %s is replaced by the seconds left, %r by the recipient "
     "domain",
     "postgrey"},
    {"--lookup-by-subnet", Arity::kFlag, "", "",
     "key triplets by the client's network (the default; see --ipv4cidr, --ipv6cidr)", "postgrey"},
    {"--lookup-by-host", Arity::kFlag, "", "", "key triplets by the client's full address",
     "postgrey"},
    {"--lookup-by", Arity::kValue, "subnet|host|domain|smart", "subnet",
     "how clients are grouped in keys: subnet (postgrey), host (--lookup-by-host), domain "
     "(registrable domain of a verified client name) or smart (domain, except generic or "
     "unverified names, which use the subnet); domain and smart also key SRS senders by their "
     "original sender",
     "greylight"},
    {"--spf-keys", Arity::kFlag, "", "",
     "key a client that passes SPF for the envelope sender's domain (the HELO name for <>) by "
     "that domain (spf:DOMAIN), so every address the domain authorises is one client; a "
     "broad pass (all, exists, ptr, wider than /16 or /32), any other result or DNS trouble "
     "keys it by --lookup-by; also keys SRS senders by their original sender",
     "greylight"},
    {"--ipv4cidr", Arity::kValue, "BITS", "24", "prefix length of an IPv4 client's network",
     "postgrey", 1, 32},
    {"--ipv6cidr", Arity::kValue, "BITS", "64", "prefix length of an IPv6 client's network",
     "postgrey", 1, 128},
    {"--auto-whitelist-clients", Arity::kOptionalValue, "N", "5",
     "whitelist a client after N successful deliveries (counted once per hour); 0 disables",
     "postgrey", 0, 1000000},
    {"--whitelist-clients", Arity::kRepeated, "FILE", "/etc/greylight/whitelist_clients",
     "client whitelist file (repeatable; replaces the default files)", "postgrey"},
    {"--whitelist-recipients", Arity::kRepeated, "FILE", "/etc/greylight/whitelist_recipients",
     "recipient whitelist file (repeatable; replaces the default files)", "postgrey"},
    {"--greytrap-recipients", Arity::kRepeated, "FILE", "",
     "greytrap addresses, in the recipient whitelist syntax: a client that writes to one is "
     "greylisted for every triplet for --greytrap-ttl and not auto-whitelisted (reason "
     "greytrap; repeatable)",
     "greylight"},
    {"--greytrap-ttl", Arity::kValue, "SECONDS", "86400",
     "how long a greytrap hit keeps the client on the trap list", "greylight", 60, 31536000},
    {"--dnswl", Arity::kRepeated, "ZONE[=CODES]", "",
     "never greylist clients this DNS allow list lists (reason dnswl); CODES: answers that "
     "count, e.g. 127.0.[0..255].[2..3] or 127.0.0.2,127.0.0.3 (repeatable)",
     "greylight"},
    {"--dnsbl", Arity::kRepeated, "ZONE[=CODES]", "",
     "DNS block list consulted with --greylist-only-listed (repeatable)", "greylight"},
    {"--greylist-only-listed", Arity::kFlag, "", "",
     "greylist only clients a --dnsbl lists; pass the others (reason not listed)", "greylight"},
    {"--dns-timeout", Arity::kValue, "MS", "1000",
     "longest wait for the DNS lists and the SPF check; a list that has not answered counts "
     "as not listing, an SPF check as temperror",
     "greylight", 1, 60000},
    {"--dns-servers", Arity::kValue, "HOST:PORT[,...]", "the resolvers of /etc/resolv.conf",
     "DNS servers to ask for the lists and SPF", "greylight"},
    {"--privacy", Arity::kFlag, "", "", "store SHA-1 digests of keys instead of addresses",
     "postgrey"},
    {"--hostname", Arity::kValue, "NAME", "the system host name",
     "host name for %h in the X-Greylist header", "postgrey"},
    {"--x-greylist-header", Arity::kValue, "TEXT",
     "X-Greylist: delayed %t seconds by greylight-%v at %h; %d",
     "header added to a message on its first accepted delivery; %t seconds delayed, %v "
     "version, %h host name, %d date",
     "postgrey"},
};

Result<Seconds> ParseRetryWindow(std::string_view text) {
  bool hours = !text.empty() && (text.back() == 'h' || text.back() == 'H');
  std::string_view number = hours ? text.substr(0, text.size() - 1) : text;
  auto value = ParseInteger<long long>("retry-window", number, 1, hours ? 24 * 3650 : 3650);
  if (!value.ok()) {
    return Status::InvalidArgument(
        "--retry-window must be either a number of days or a number followed by 'h' for hours "
        "('6h' for example)");
  }
  return Seconds(*value * (hours ? 3600 : 86400));
}

std::string SystemHostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

}  // namespace

Status CheckAction(std::string_view option, std::string_view action) {
  if (action.empty() || action.find_first_of("\r\n") != std::string_view::npos ||
      action.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(
        fmt::format("--{}: must be a non-empty Postfix action on one line", option));
  }
  return Status::Ok();
}

std::span<const OptionSpec> PolicyOptionTable() { return kPolicyOptions; }

Status ParsePolicyConfig(const ParsedOptions& o, PolicyConfig& c) {
  IntegerOptions numbers(o);
  numbers.Set("delay", c.timing.delay);
  numbers.Set<std::chrono::days>("max-age", c.timing.max_age);
  numbers.Set("greytrap-ttl", c.timing.trap_ttl);
  if (!numbers.status().ok()) return numbers.status();
  auto retry_window = ParseRetryWindow(o.LastOrDefault("retry-window"));
  if (!retry_window.ok()) return retry_window.status();
  c.timing.retry_window = *retry_window;
  numbers.Set("auto-whitelist-clients", c.timing.awl_threshold);
  if (!numbers.status().ok()) return numbers.status();

  engine::EngineOptions& e = c.engine;
  numbers.Set("ipv4cidr", e.keys.ipv4_cidr);
  numbers.Set("ipv6cidr", e.keys.ipv6_cidr);
  numbers.Set("store-timeout", c.store.timeout);
  if (!numbers.status().ok()) return numbers.status();
  e.keys.lookup_by_host = o.Has("lookup-by-host");
  e.keys.privacy = o.Has("privacy");
  if (o.Has("lookup-by")) {
    auto lookup_by = reputation::ParseLookupBy(o.Last("lookup-by"));
    if (!lookup_by.ok()) {
      return Status::InvalidArgument(fmt::format("--lookup-by: {}", lookup_by.status().message()));
    }
    e.lookup_by = *lookup_by;
  } else if (e.keys.lookup_by_host) {
    e.lookup_by = reputation::LookupBy::kHost;
  }
  e.spf_keys = o.Has("spf-keys");
  // postgrey's modes keep postgrey's keys byte for byte; greylight's own decode SRS.
  e.keys.decode_srs = e.spf_keys || reputation::GroupsByDomain(e.lookup_by);
  e.greylist_action = std::string(o.Last("greylist-action", policy::kDefaultGreylistAction));
  if (Status s = CheckAction("greylist-action", e.greylist_action); !s.ok()) return s;
  e.greylist_text = std::string(o.Last("greylist-text", policy::kDefaultGreylistText));
  e.x_greylist_header = std::string(o.Last("x-greylist-header", policy::kDefaultXGreylistHeader));
  if (Status s = CheckAction("greylist-text", "x" + e.greylist_text); !s.ok()) return s;
  if (Status s = CheckAction("x-greylist-header", e.x_greylist_header); !s.ok()) return s;
  e.hostname = o.Has("hostname") ? std::string(o.Last("hostname")) : SystemHostname();

  e.greylist_only_listed = o.Has("greylist-only-listed");
  for (auto [option, kind] : {std::pair{"dnswl", reputation::ListKind::kAllow},
                              std::pair{"dnsbl", reputation::ListKind::kBlock}}) {
    for (const std::string& spec : o.All(option)) {
      auto list = reputation::DnsList::Parse(kind, spec);
      if (!list.ok()) {
        return Status::InvalidArgument(fmt::format("--{}: {}", option, list.status().message()));
      }
      c.dns.lists.push_back(*list);
    }
  }
  if (e.greylist_only_listed &&
      c.dns.lists.end() ==
          std::find_if(c.dns.lists.begin(), c.dns.lists.end(), [](const reputation::DnsList& l) {
            return l.kind == reputation::ListKind::kBlock;
          })) {
    return Status::InvalidArgument("--greylist-only-listed needs at least one --dnsbl");
  }
  numbers.Set("dns-timeout", c.dns.timeout);
  if (!numbers.status().ok()) return numbers.status();
  c.dns.servers = std::string(o.Last("dns-servers"));
  c.spf.timeout = c.dns.timeout;
  c.spf.servers = c.dns.servers;

  c.dbdir = std::string(o.LastOrDefault("dbdir"));
  if (c.dbdir.empty()) return Status::InvalidArgument("--dbdir: empty path");
  c.store.uri = std::string(o.Last("store", store::StoreConfig::kDefaultUri));
  c.store.prefix = std::string(o.Last("store-prefix", store::StoreConfig::kDefaultPrefix));
  c.store.dbdir = c.dbdir;
  c.store.timing = c.timing;
  if (store::IsClusterUri(c.store.uri)) {
    // A cluster check is one script on one slot: the keys of one request must share a
    // hash tag (docs/design.md, "Redis Cluster"), which digests and wide networks break.
    if (e.keys.privacy) {
      return Status::InvalidArgument(
          "--privacy: not supported with a Redis Cluster store: a triplet's and its client's "
          "digests would be on different slots");
    }
    if (e.keys.ipv4_cidr < store::kClusterIpv4TagBits ||
        e.keys.ipv6_cidr < store::kClusterIpv6TagBits) {
      return Status::InvalidArgument(fmt::format(
          "--ipv4cidr={} --ipv6cidr={}: a Redis Cluster store needs at least {} and {} (the "
          "hash tag is the client's /{} or /{} network)",
          e.keys.ipv4_cidr, e.keys.ipv6_cidr, store::kClusterIpv4TagBits,
          store::kClusterIpv6TagBits, store::kClusterIpv4TagBits, store::kClusterIpv6TagBits));
    }
  }
  c.whitelist_clients = o.All("whitelist-clients");
  c.whitelist_recipients = o.All("whitelist-recipients");
  c.greytrap_recipients = o.All("greytrap-recipients");
  for (const std::string& file : c.greytrap_recipients) {
    if (file.empty()) return Status::InvalidArgument("--greytrap-recipients: empty path");
  }
  return Status::Ok();
}

Result<std::unique_ptr<const reputation::Psl>> LoadPsl(const PolicyConfig& config) {
  if (!reputation::GroupsByDomain(config.engine.lookup_by)) {
    return std::unique_ptr<const reputation::Psl>();
  }
  auto loaded = reputation::Psl::LoadSystem();
  if (!loaded.ok()) {
    return Status::InvalidArgument(
        fmt::format("--lookup-by={}: can't load the public suffix list: {}",
                    reputation::LookupByName(config.engine.lookup_by), loaded.status().message()));
  }
  return std::move(loaded.value());
}

Result<std::shared_ptr<const whitelist::Whitelists>> LoadWhitelists(const PolicyConfig& config) {
  return whitelist::Whitelists::Load(
      whitelist::ResolveWhitelistFiles(config.whitelist_clients, config.whitelist_recipients));
}

Result<std::shared_ptr<const reputation::Greytraps>> LoadGreytraps(const PolicyConfig& config) {
  if (config.greytrap_recipients.empty()) return std::shared_ptr<const reputation::Greytraps>();
  return reputation::Greytraps::Load(config.greytrap_recipients);
}

}  // namespace greylight::cli
