#include "cli/daemon_config.h"

#include <fmt/format.h>
#include <syslog.h>
#include <unistd.h>

#include <charconv>

#include "policy/reply_text.h"

namespace greylight::cli {
namespace {

using Arity = OptionSpec::Arity;

constexpr OptionSpec kDaemonOptions[] = {
    {"-h,--help", Arity::kFlag, "", "", "print this help and exit", "postgrey"},
    {"--man", Arity::kFlag, "", "", "print this help and exit (see greylightd(8))", "postgrey"},
    {"--version", Arity::kFlag, "", "", "print the version and exit", "postgrey"},
    {"-n,--noaction,--no-action", Arity::kFlag, "", "",
     "accepted for postgrey compatibility; there is no dry-run mode, so it is an error",
     "postgrey"},
    {"-v,--verbose", Arity::kFlag, "", "", "log more: connections and other informational lines",
     "postgrey"},
    {"-q,--quiet", Arity::kFlag, "", "",
     "log less: no per-request action= lines (wins over --verbose)", "postgrey"},
    {"-d,--daemonize", Arity::kFlag, "", "",
     "run in the background and log to syslog instead of stderr", "postgrey"},
    {"--pidfile", Arity::kValue, "PATH", "", "write the process id to PATH (also in the foreground)",
     "postgrey"},
    {"-u,--unix", Arity::kRepeated, "PATH", "", "listen on the UNIX stream socket PATH (repeatable)",
     "postgrey"},
    {"--socketmode", Arity::kValue, "MODE", "0666", "octal permissions of the UNIX sockets",
     "postgrey"},
    {"-i,--inet", Arity::kRepeated, "[HOST:]PORT", "",
     "listen on TCP; a bare PORT means 127.0.0.1:PORT, *:PORT all addresses, [::1]:PORT IPv6 "
     "(repeatable, may be combined with --unix)",
     "postgrey"},
    {"--user", Arity::kValue, "USER", "greylight",
     "when started as root, switch to USER after binding; --user=root keeps root", "postgrey"},
    {"--group", Arity::kValue, "GROUP", "the --user value, else greylight",
     "when started as root, switch to GROUP",
     "postgrey"},
    {"--dbdir", Arity::kValue, "PATH", "/var/lib/greylight", "directory of the LMDB database",
     "postgrey"},
    {"--delay", Arity::kValue, "SECONDS", "300",
     "greylist a new triplet for this many seconds (1 to 86400)", "postgrey"},
    {"--max-age", Arity::kValue, "DAYS", "35",
     "forget triplets and auto-whitelisted clients not seen for DAYS days (1 to 3650)",
     "postgrey"},
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
     "key triplets by the client's network (the default; see --ipv4cidr, --ipv6cidr)",
     "postgrey"},
    {"--lookup-by-host", Arity::kFlag, "", "", "key triplets by the client's full address",
     "postgrey"},
    {"--ipv4cidr", Arity::kValue, "BITS", "24", "prefix length of an IPv4 client's network (1 to 32)",
     "postgrey"},
    {"--ipv6cidr", Arity::kValue, "BITS", "64",
     "prefix length of an IPv6 client's network (1 to 128)", "postgrey"},
    {"--auto-whitelist-clients", Arity::kOptionalValue, "N", "5",
     "whitelist a client after N successful deliveries (counted once per hour); 0 disables",
     "postgrey"},
    {"--whitelist-clients", Arity::kRepeated, "FILE", "/etc/greylight/whitelist_clients",
     "client whitelist file (repeatable; replaces the default files)", "postgrey"},
    {"--whitelist-recipients", Arity::kRepeated, "FILE", "/etc/greylight/whitelist_recipients",
     "recipient whitelist file (repeatable; replaces the default files)", "postgrey"},
    {"--syslog-facility,--syslogfacility,--facility", Arity::kValue, "NAME", "mail",
     "syslog facility used with --daemonize", "postgrey"},
    {"--privacy", Arity::kFlag, "", "", "store SHA-1 digests of keys instead of addresses",
     "postgrey"},
    {"--hostname", Arity::kValue, "NAME", "the system host name",
     "host name for %h in the X-Greylist header", "postgrey"},
    {"--exim", Arity::kFlag, "", "", "close the connection after every reply (for Exim)",
     "postgrey"},
    {"--listen-queue-size", Arity::kValue, "N", "1024", "listen backlog of every socket",
     "postgrey"},
    {"--x-greylist-header", Arity::kValue, "TEXT",
     "X-Greylist: delayed %t seconds by greylight-%v at %h; %d",
     "header added to a message on its first accepted delivery; %t seconds delayed, %v "
     "version, %h host name, %d date",
     "postgrey"},
    {"--allow-policy-test-time", Arity::kFlag, "", "",
     "honour the policy_test_time request attribute (postgrey's replay tool; never in "
     "production)",
     "greylight"},
    {"--commit-interval", Arity::kValue, "MS", "50",
     "commit updates to disk together every MS milliseconds; a crash loses at most that "
     "window; 0 commits each request before answering it",
     "greylight"},
    {"--store-error-action", Arity::kValue, "ACTION", "DUNNO",
     "answer when the store fails (DUNNO fails open)", "greylight"},
    {"--idle-timeout", Arity::kValue, "SECONDS", "3600",
     "close a connection idle for this long (Postfix closes its own after 300 s)", "greylight"},
    {"--request-timeout", Arity::kValue, "SECONDS", "60",
     "close a connection whose started request is not complete within this time", "greylight"},
    {"--max-connections", Arity::kValue, "N", "4000",
     "most open connections; more are refused with a warning", "greylight"},
    {"--max-connections-per-peer", Arity::kValue, "N", "1000",
     "most open TCP connections from one address", "greylight"},
    {"--allow-from", Arity::kRepeated, "CIDR", "",
     "accept TCP connections only from these networks (repeatable; default: any, but --inet "
     "binds loopback unless given a host)",
     "greylight"},
    {"--metrics-listen", Arity::kValue, "[HOST:]PORT", "",
     "serve Prometheus metrics at http://HOST:PORT/metrics (a bare PORT means 127.0.0.1)",
     "greylight"},
    {"--log-format", Arity::kValue, "postgrey|json", "postgrey",
     "per-decision log lines: postgrey's format, or one JSON object with the key and timings",
     "greylight"},
    {"--log-level", Arity::kValue, "LEVEL", "notice",
     "err, warning, notice, info or debug (-q is warning, -v is info)", "greylight"},
    {"--summary-interval", Arity::kValue, "SECONDS", "3600",
     "log a one-line summary of the counters this often; 0 disables", "greylight"},
    {"--max-line-length", Arity::kValue, "BYTES", "8192",
     "longest request line accepted; a longer one closes the connection", "greylight"},
    {"--max-attributes", Arity::kValue, "N", "128", "most attributes in one request",
     "greylight"},
    {"--max-request-size", Arity::kValue, "BYTES", "65536", "largest request accepted",
     "greylight"},
};

template <typename Integer>
Result<Integer> ParseInteger(std::string_view option, std::string_view text, Integer min,
                             Integer max, int base = 10) {
  Integer value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    return Status::InvalidArgument(
        fmt::format("--{}: '{}' is not a number from {} to {}", option, text, min, max));
  }
  return value;
}

Status CheckAction(std::string_view option, std::string_view action) {
  if (action.empty() || action.find_first_of("\r\n") != std::string_view::npos ||
      action.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(
        fmt::format("--{}: must be a non-empty Postfix action on one line", option));
  }
  return Status::Ok();
}

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

std::span<const OptionSpec> DaemonOptionTable() { return kDaemonOptions; }

std::string DaemonUsage() {
  return "usage: greylightd [options] --inet=[HOST:]PORT | --unix=PATH\n"
         "greylisting policy server for Postfix, a drop-in replacement for postgrey\n\n" +
         FormatOptionHelp(kDaemonOptions) +
         "\nSignals: HUP reloads the whitelists; TERM, INT and QUIT answer what was received, "
         "then exit.\n";
}

Result<DaemonConfig> ParseDaemonConfig(const std::vector<std::string>& args) {
  auto parsed_or = ParseOptions(kDaemonOptions, args);
  if (!parsed_or.ok()) return parsed_or.status();
  const ParsedOptions& o = parsed_or.value();
  DaemonConfig c;
  c.original_args = args;
  if (o.Has("help") || o.Has("man")) {
    c.mode = DaemonConfig::Mode::kHelp;
    return c;
  }
  if (o.Has("version")) {
    c.mode = DaemonConfig::Mode::kVersion;
    return c;
  }
  if (o.Has("noaction")) return Status::InvalidArgument("don't know how to \"no-action\".");

  for (const std::string& inet : o.All("inet")) {
    auto addresses = server::ParseInet(inet);
    if (!addresses.ok()) return addresses.status();
    for (auto& address : *addresses) c.server.listen.push_back(address);
  }
  for (const std::string& path : o.All("unix")) {
    if (path.empty()) return Status::InvalidArgument("--unix: empty path");
    server::ListenAddress address;
    address.kind = server::ListenAddress::Kind::kUnix;
    address.path = path;
    c.server.listen.push_back(address);
  }
  if (c.server.listen.empty()) return Status::InvalidArgument("--unix or --inet must be specified");

  auto socket_mode = ParseInteger<unsigned>("socketmode", o.Last("socketmode", "0666"), 0, 07777, 8);
  if (!socket_mode.ok()) return socket_mode.status();
  c.server.socket_mode = *socket_mode;
  auto backlog = ParseInteger<int>("listen-queue-size", o.Last("listen-queue-size", "1024"), 1, 65535);
  if (!backlog.ok()) return backlog.status();
  c.server.listen_backlog = *backlog;
  c.server.close_after_reply = o.Has("exim");
  auto idle = ParseInteger<long long>("idle-timeout", o.Last("idle-timeout", "3600"), 1, 86400 * 7);
  if (!idle.ok()) return idle.status();
  c.server.idle_timeout = std::chrono::seconds(*idle);
  auto request_timeout =
      ParseInteger<long long>("request-timeout", o.Last("request-timeout", "60"), 1, 3600);
  if (!request_timeout.ok()) return request_timeout.status();
  c.server.request_timeout = std::chrono::seconds(*request_timeout);
  auto max_connections =
      ParseInteger<size_t>("max-connections", o.Last("max-connections", "4000"), 1, 1000000);
  if (!max_connections.ok()) return max_connections.status();
  c.server.max_connections = *max_connections;
  auto per_peer = ParseInteger<size_t>("max-connections-per-peer",
                                       o.Last("max-connections-per-peer", "1000"), 1, 1000000);
  if (!per_peer.ok()) return per_peer.status();
  c.server.max_connections_per_peer = *per_peer;
  for (const std::string& cidr : o.All("allow-from")) {
    auto network = server::ParseNetwork(cidr);
    if (!network.ok()) {
      return Status::InvalidArgument(fmt::format("--allow-from: {}", network.status().message()));
    }
    c.server.allow_from.push_back(*network);
  }
  if (o.Has("metrics-listen")) {
    auto metrics = server::ParseInet(o.Last("metrics-listen"));
    if (!metrics.ok()) {
      return Status::InvalidArgument(fmt::format("--metrics-listen: {}", metrics.status().message()));
    }
    if (metrics->size() != 1) return Status::InvalidArgument("--metrics-listen: one address only");
    c.metrics_listen = metrics->front();
  }
  auto line = ParseInteger<size_t>("max-line-length", o.Last("max-line-length", "8192"), 256, 1 << 20);
  if (!line.ok()) return line.status();
  c.server.parser_limits.max_line_bytes = *line;
  auto attributes = ParseInteger<size_t>("max-attributes", o.Last("max-attributes", "128"), 8, 4096);
  if (!attributes.ok()) return attributes.status();
  c.server.parser_limits.max_attributes = *attributes;
  auto request_size =
      ParseInteger<size_t>("max-request-size", o.Last("max-request-size", "65536"), 1024, 16 << 20);
  if (!request_size.ok()) return request_size.status();
  c.server.parser_limits.max_request_bytes = *request_size;

  auto delay = ParseInteger<long long>("delay", o.Last("delay", "300"), 1, 86400);
  if (!delay.ok()) return delay.status();
  c.timing.delay = Seconds(*delay);
  auto max_age = ParseInteger<long long>("max-age", o.Last("max-age", "35"), 1, 3650);
  if (!max_age.ok()) return max_age.status();
  c.timing.max_age = Seconds(*max_age * 86400);
  auto retry_window = ParseRetryWindow(o.Last("retry-window", "2"));
  if (!retry_window.ok()) return retry_window.status();
  c.timing.retry_window = *retry_window;
  if (o.Has("auto-whitelist-clients")) {
    std::string_view value = o.Last("auto-whitelist-clients");
    auto threshold =
        ParseInteger<int>("auto-whitelist-clients", value.empty() ? "5" : value, 0, 1000000);
    if (!threshold.ok()) return threshold.status();
    c.timing.awl_threshold = *threshold;
  }

  engine::EngineOptions& e = c.engine;
  auto ipv4 = ParseInteger<int>("ipv4cidr", o.Last("ipv4cidr", "24"), 1, 32);
  if (!ipv4.ok()) return ipv4.status();
  auto ipv6 = ParseInteger<int>("ipv6cidr", o.Last("ipv6cidr", "64"), 1, 128);
  if (!ipv6.ok()) return ipv6.status();
  e.keys.ipv4_cidr = *ipv4;
  e.keys.ipv6_cidr = *ipv6;
  e.keys.lookup_by_host = o.Has("lookup-by-host");
  e.keys.privacy = o.Has("privacy");
  e.awl_enabled = c.timing.awl_threshold > 0;
  e.greylist_action = std::string(o.Last("greylist-action", policy::kDefaultGreylistAction));
  if (Status s = CheckAction("greylist-action", e.greylist_action); !s.ok()) return s;
  e.greylist_text = std::string(o.Last("greylist-text", policy::kDefaultGreylistText));
  e.x_greylist_header = std::string(o.Last("x-greylist-header", policy::kDefaultXGreylistHeader));
  if (Status s = CheckAction("greylist-text", "x" + e.greylist_text); !s.ok()) return s;
  if (Status s = CheckAction("x-greylist-header", e.x_greylist_header); !s.ok()) return s;
  e.hostname = o.Has("hostname") ? std::string(o.Last("hostname")) : SystemHostname();
  e.store_error_action = std::string(o.Last("store-error-action", "DUNNO"));
  if (Status s = CheckAction("store-error-action", e.store_error_action); !s.ok()) return s;
  e.allow_policy_test_time = o.Has("allow-policy-test-time");

  c.dbdir = std::string(o.Last("dbdir", "/var/lib/greylight"));
  if (c.dbdir.empty()) return Status::InvalidArgument("--dbdir: empty path");
  auto commit = ParseInteger<long long>("commit-interval", o.Last("commit-interval", "50"), 0, 10000);
  if (!commit.ok()) return commit.status();
  c.commit_interval = std::chrono::milliseconds(*commit);

  c.whitelist_clients_given = o.Has("whitelist-clients");
  for (const std::string& path : o.All("whitelist-clients")) c.whitelist_clients.emplace_back(path);
  c.whitelist_recipients_given = o.Has("whitelist-recipients");
  for (const std::string& path : o.All("whitelist-recipients")) {
    c.whitelist_recipients.emplace_back(path);
  }

  c.daemonize = o.Has("daemonize");
  c.pidfile = std::string(o.Last("pidfile"));
  c.user_given = o.Has("user");
  c.user = std::string(o.Last("user", "greylight"));
  c.group = std::string(o.Last("group", o.Has("user") ? o.Last("user") : "greylight"));
  if (c.user.empty() || c.group.empty()) {
    return Status::InvalidArgument("--user and --group must not be empty");
  }
  c.log_level = o.Has("quiet") ? log::Level::kWarning
                : o.Has("verbose") ? log::Level::kInfo
                                   : log::Level::kNotice;
  if (o.Has("log-level")) {
    auto level = log::LevelFromName(o.Last("log-level"));
    if (!level) {
      return Status::InvalidArgument(
          fmt::format("--log-level: unknown level '{}' (err, warning, notice, info, debug)",
                      o.Last("log-level")));
    }
    c.log_level = *level;
  }
  std::string_view format = o.Last("log-format", "postgrey");
  if (format == "json") {
    c.engine.log_format = engine::EngineOptions::LogFormat::kJson;
  } else if (format != "postgrey") {
    return Status::InvalidArgument(fmt::format("--log-format: '{}' is not postgrey or json", format));
  }
  auto summary =
      ParseInteger<long long>("summary-interval", o.Last("summary-interval", "3600"), 0, 86400 * 7);
  if (!summary.ok()) return summary.status();
  c.summary_interval = std::chrono::seconds(*summary);
  std::string_view facility = o.Last("syslog-facility", "mail");
  c.syslog_facility = log::FacilityFromName(facility);
  if (c.syslog_facility < 0) {
    return Status::InvalidArgument(fmt::format("--syslog-facility: unknown facility '{}'", facility));
  }
  return c;
}

}  // namespace greylight::cli
