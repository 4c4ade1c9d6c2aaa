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
    {"--pidfile", Arity::kValue, "PATH", "",
     "write the process id to PATH (also in the foreground)", "postgrey"},
    {"-u,--unix", Arity::kRepeated, "PATH", "",
     "listen on the UNIX stream socket PATH (repeatable)", "postgrey"},
    {"--socketmode", Arity::kValue, "MODE", "0666", "octal permissions of the UNIX sockets",
     "postgrey", 0, 07777, 8},
    {"-i,--inet", Arity::kRepeated, "[HOST:]PORT", "",
     "listen on TCP; a bare PORT means 127.0.0.1:PORT, *:PORT all addresses, [::1]:PORT IPv6 "
     "(repeatable, may be combined with --unix)",
     "postgrey"},
    {"--outbound-inet", Arity::kRepeated, "[HOST:]PORT", "",
     "an outbound listener on TCP for Postfix's submission service, as --inet: each request "
     "records its (recipient, sender) pair and is answered DUNNO; the recipient's replies to "
     "the sender then pass without greylisting for --max-age (reason reply; repeatable)",
     "greylight"},
    {"--outbound-unix", Arity::kRepeated, "PATH", "",
     "an outbound listener on the UNIX stream socket PATH, as --outbound-inet (repeatable)",
     "greylight"},
    {"--user", Arity::kValue, "USER", "greylight",
     "when started as root, switch to USER after binding; --user=root keeps root", "postgrey"},
    {"--group", Arity::kValue, "GROUP", "the --user value, else greylight",
     "when started as root, switch to GROUP", "postgrey"},
    {"--syslog-facility,--syslogfacility,--facility", Arity::kValue, "NAME", "mail",
     "syslog facility used with --daemonize", "postgrey"},
    {"--exim", Arity::kFlag, "", "",
     "close the connection after every reply (for Exim); the one-X-Greylist-header-per-message "
     "memory is then shared by all connections, as postgrey's",
     "postgrey"},
    {"--listen-queue-size", Arity::kValue, "N", "1024", "listen backlog of every socket",
     "postgrey", 1, 65535},
    {"--allow-policy-test-time", Arity::kFlag, "", "",
     "honour the policy_test_time request attribute (postgrey's replay tool; never in "
     "production)",
     "greylight"},
    {"--commit-interval", Arity::kValue, "MS", "50",
     "commit updates to disk together every MS milliseconds; a crash loses at most that "
     "window; 0 commits each request before answering it",
     "greylight", 0, 10000},
    {"--pending-commit-interval", Arity::kValue, "MS", "1000",
     "commit triplets still pending (greylisted) every MS milliseconds: fewer disk writes "
     "for new triplets; a crash loses at most that window of them (their senders are "
     "greylisted once more); at or below --commit-interval they commit with the rest",
     "greylight", 0, 60000},
    {"--store-error-action", Arity::kValue, "ACTION", "DUNNO",
     "answer when the store fails (DUNNO fails open)", "greylight"},
    {"--idle-timeout", Arity::kValue, "SECONDS", "3600",
     "close a connection idle for this long (Postfix closes its own after 300 s)", "greylight", 1,
     604800},
    {"--request-timeout", Arity::kValue, "SECONDS", "60",
     "close a connection whose started request is not complete within this time", "greylight", 1,
     3600},
    {"--max-connections", Arity::kValue, "N", "4000",
     "most open connections; more are refused with a warning", "greylight", 1, 1000000},
    {"--max-connections-per-peer", Arity::kValue, "N", "1000",
     "most open TCP connections from one remote address (loopback and UNIX peers count only "
     "against --max-connections)",
     "greylight", 1, 1000000},
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
     "log a one-line summary of the counters this often; 0 disables", "greylight", 0, 604800},
    {"--max-line-length", Arity::kValue, "BYTES", "8192",
     "longest request line accepted; a longer one closes the connection", "greylight", 256,
     1048576},
    {"--max-attributes", Arity::kValue, "N", "128", "most attributes in one request", "greylight",
     8, 4096},
    {"--max-request-size", Arity::kValue, "BYTES", "65536", "largest request accepted", "greylight",
     1024, 16777216},
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
  for (const std::string& inet : o.All("outbound-inet")) {
    auto addresses = server::ParseInet(inet, "--outbound-inet");
    if (!addresses.ok()) return addresses.status();
    for (auto& address : *addresses) {
      address.role = server::ListenAddress::Role::kOutbound;
      c.server.listen.push_back(address);
    }
  }
  for (const std::string& path : o.All("outbound-unix")) {
    if (path.empty()) return Status::InvalidArgument("--outbound-unix: empty path");
    server::ListenAddress address;
    address.kind = server::ListenAddress::Kind::kUnix;
    address.path = path;
    address.role = server::ListenAddress::Role::kOutbound;
    c.server.listen.push_back(address);
  }
  if (c.server.listen.empty()) return Status::InvalidArgument("--unix or --inet must be specified");

  IntegerOptions numbers(o);
  numbers.Set("socketmode", c.server.socket_mode);
  numbers.Set("listen-queue-size", c.server.listen_backlog);
  numbers.Set("idle-timeout", c.server.idle_timeout);
  numbers.Set("request-timeout", c.server.request_timeout);
  numbers.Set("max-connections", c.server.max_connections);
  numbers.Set("max-connections-per-peer", c.server.max_connections_per_peer);
  if (!numbers.status().ok()) return numbers.status();
  c.server.close_after_reply = o.Has("exim");
  for (const std::string& cidr : o.All("allow-from")) {
    auto network = policy::ParseNetwork(cidr);
    if (!network) {
      return Status::InvalidArgument(fmt::format(
          "--allow-from: '{}' is not an IP address or network (ADDRESS or ADDRESS/BITS)", cidr));
    }
    c.server.allow_from.push_back(*network);
  }
  if (o.Has("metrics-listen")) {
    auto metrics = server::ParseInet(o.Last("metrics-listen"));
    if (!metrics.ok()) {
      return Status::InvalidArgument(
          fmt::format("--metrics-listen: {}", metrics.status().message()));
    }
    if (metrics->size() != 1) return Status::InvalidArgument("--metrics-listen: one address only");
    c.metrics_listen = metrics->front();
  }
  numbers.Set("max-line-length", c.server.parser_limits.max_line_bytes);
  numbers.Set("max-attributes", c.server.parser_limits.max_attributes);
  numbers.Set("max-request-size", c.server.parser_limits.max_request_bytes);
  if (!numbers.status().ok()) return numbers.status();

  if (Status policy = ParsePolicyConfig(o, c.policy); !policy.ok()) return policy;
  engine::EngineOptions& e = c.policy.engine;
  e.store_error_action = std::string(o.LastOrDefault("store-error-action"));
  if (Status s = CheckAction("store-error-action", e.store_error_action); !s.ok()) return s;
  e.allow_policy_test_time = o.Has("allow-policy-test-time");
  numbers.Set("commit-interval", c.policy.store.commit_interval);
  numbers.Set("pending-commit-interval", c.policy.store.pending_commit_interval);

  c.daemonize = o.Has("daemonize");
  c.pidfile = std::string(o.Last("pidfile"));
  c.user_given = o.Has("user");
  c.user = std::string(o.LastOrDefault("user"));
  c.group = std::string(o.Last("group", o.LastOrDefault("user")));
  if (c.user.empty() || c.group.empty()) {
    return Status::InvalidArgument("--user and --group must not be empty");
  }
  c.log_level = o.Has("quiet")     ? log::Level::kWarning
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
  std::string_view format = o.LastOrDefault("log-format");
  if (format == "json") {
    c.server.log_format = engine::LogFormat::kJson;
    c.policy.engine.keep_triplet_key = true;  // the JSON line names the key
  } else if (format != "postgrey") {
    return Status::InvalidArgument(
        fmt::format("--log-format: '{}' is not postgrey or json", format));
  }
  numbers.Set("summary-interval", c.summary_interval);
  if (!numbers.status().ok()) return numbers.status();
  std::string_view facility = o.LastOrDefault("syslog-facility");
  c.syslog_facility = log::FacilityFromName(facility);
  if (c.syslog_facility < 0) {
    return Status::InvalidArgument(
        fmt::format("--syslog-facility: unknown facility '{}'", facility));
  }
  return c;
}

}  // namespace greylight::cli
