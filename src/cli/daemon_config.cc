#include "cli/daemon_config.h"

#include <fmt/format.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>


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
    {"--syslog-facility,--syslogfacility,--facility", Arity::kValue, "NAME", "mail",
     "syslog facility used with --daemonize", "postgrey"},
    {"--exim", Arity::kFlag, "", "", "close the connection after every reply (for Exim)",
     "postgrey"},
    {"--listen-queue-size", Arity::kValue, "N", "1024", "listen backlog of every socket",
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
    {"--dnswl", Arity::kRepeated, "ZONE[=CODES]", "",
     "never greylist clients this DNS allow list lists (reason dnswl); CODES: answers that "
     "count, e.g. 127.0.[0..255].[2..3] or 127.0.0.2,127.0.0.3 (repeatable)",
     "greylight"},
    {"--dnsbl", Arity::kRepeated, "ZONE[=CODES]", "",
     "DNS block list consulted with --greylist-only-listed (repeatable)", "greylight"},
    {"--greylist-only-listed", Arity::kFlag, "", "",
     "greylist only clients a --dnsbl lists; pass the others (reason not listed)", "greylight"},
    {"--dns-timeout", Arity::kValue, "MS", "1000",
     "longest wait for the DNS lists; a list that has not answered counts as not listing",
     "greylight"},
    {"--dns-servers", Arity::kValue, "HOST:PORT[,...]", "the resolvers of /etc/resolv.conf",
     "DNS servers to ask for the lists", "greylight"},
    {"--max-line-length", Arity::kValue, "BYTES", "8192",
     "longest request line accepted; a longer one closes the connection", "greylight"},
    {"--max-attributes", Arity::kValue, "N", "128", "most attributes in one request",
     "greylight"},
    {"--max-request-size", Arity::kValue, "BYTES", "65536", "largest request accepted",
     "greylight"},
};

}  // namespace

std::span<const OptionSpec> DaemonOptionTable() {
  // postgrey's options first, in its order, then greylight's own.
  static const std::vector<OptionSpec> table = [] {
    std::vector<OptionSpec> all;
    for (const OptionSpec& spec : kDaemonOptions) {
      if (spec.section == "postgrey") all.push_back(spec);
    }
    for (const OptionSpec& spec : PolicyOptionTable()) all.push_back(spec);
    for (const OptionSpec& spec : kDaemonOptions) {
      if (spec.section != "postgrey") all.push_back(spec);
    }
    return all;
  }();
  return table;
}

std::string DaemonUsage() {
  return "usage: greylightd [options] --inet=[HOST:]PORT | --unix=PATH\n"
         "greylisting policy server for Postfix, a drop-in replacement for postgrey\n\n" +
         FormatOptionHelp(DaemonOptionTable()) +
         "\nSignals: HUP reloads the whitelists; TERM, INT and QUIT answer what was received, "
         "then exit.\n";
}

Result<DaemonConfig> ParseDaemonConfig(const std::vector<std::string>& args) {
  auto parsed_or = ParseOptions(DaemonOptionTable(), args);
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

  if (Status policy = ParsePolicyConfig(o, c.policy); !policy.ok()) return policy;
  engine::EngineOptions& e = c.policy.engine;
  e.store_error_action = std::string(o.Last("store-error-action", "DUNNO"));
  if (Status s = CheckAction("store-error-action", e.store_error_action); !s.ok()) return s;
  e.allow_policy_test_time = o.Has("allow-policy-test-time");
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
  if (e.greylist_only_listed && c.dns.lists.end() == std::find_if(c.dns.lists.begin(), c.dns.lists.end(), [](const reputation::DnsList& l) { return l.kind == reputation::ListKind::kBlock; })) {
    return Status::InvalidArgument("--greylist-only-listed needs at least one --dnsbl");
  }
  auto dns_timeout = ParseInteger<long long>("dns-timeout", o.Last("dns-timeout", "1000"), 1, 60000);
  if (!dns_timeout.ok()) return dns_timeout.status();
  c.dns.timeout = std::chrono::milliseconds(*dns_timeout);
  c.dns.servers = std::string(o.Last("dns-servers"));

  auto commit = ParseInteger<long long>("commit-interval", o.Last("commit-interval", "50"), 0, 10000);
  if (!commit.ok()) return commit.status();
  c.commit_interval = std::chrono::milliseconds(*commit);

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
    c.policy.engine.log_format = engine::EngineOptions::LogFormat::kJson;
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
