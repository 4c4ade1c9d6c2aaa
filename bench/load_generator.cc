// greylight-bench: a load generator that talks to a Postfix policy server the way Postfix's
// smtpd does, and a null policy server that shows the machine's limit. See bench/README.md.

#include <fmt/format.h>
#include <sys/resource.h>

#include <charconv>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/client.h"
#include "bench/null_server.h"

namespace greylight::bench {
namespace {

constexpr int kMaxConnections = 10'000;
constexpr int kMaxThreads = 64;
constexpr double kMaxDurationSeconds = 600;
constexpr double kMaxTimeoutSeconds = 600;

constexpr std::string_view kHelp = R"(Usage:
  greylight-bench --connect TARGET --duration SECONDS [options]
  greylight-bench --null-server ADDRESS [--threads N]
  greylight-bench --help

Client mode: load a Postfix policy server the way Postfix's smtpd does. Opens N persistent
connections, each with exactly one request in flight (send a request, wait for the whole
"action=...\n\n" reply, send the next). Requests are full Postfix 3.7 smtpd_access_policy
requests at the RCPT stage (every attribute, in Postfix's order, about 640 bytes), with
clients over IPv4 and IPv6 (80/20), verified, generic and unknown client names, senders with
+tags, BATV prvs= tags and VERP numbers, and recipients in four domains. Latency is measured
with a monotonic clock from sending a request to receiving its full reply.

  --connect TARGET     server to load: HOST:PORT, [IPV6]:PORT or unix:/path
  --connections N      persistent connections (1 to 10000, default 1)
  --duration SECONDS   length of the measured window (required, at most 600)
  --requests MAX       also stop after MAX measured replies
  --mode MODE          traffic (default mixed):
                         new    every request carries a triplet never sent before
                         mixed  50% new triplets, 30% retries of earlier triplets,
                                20% earlier client and sender to a new recipient
                         hot    triplets drawn from a fixed hot set; once the hot set
                                has passed greylisting, every answer is a pass
  --hot-set K          size of the hot set (1 to 10000000, default 1000)
  --seed S             the requests are a function of mode, seed and hot set size only,
                       whatever the timing and the number of connections (default 1)
  --warmup SECONDS     time before measuring (default 0). Modes new and mixed send
                       unmeasured load. Mode hot first sends every hot triplet once, then
                       idles for SECONDS: give more than the server's greylisting delay,
                       so that the whole hot set passes.
  --timeout SECONDS    per request and per connect attempt (default 5). A timeout counts
                       as an error and closes the connection, which reconnects 200 ms later.
  --threads N          threads, each with its own io_context and share of the
                       connections (1 to 64, default 1)
  --cpu-pid PID        a server process whose CPU time (user, system; /proc/PID/stat)
                       the measured window used, reported per measured request;
                       repeat for several (e.g. greylightd and its redis-server)
  --json               print one JSON object instead of text

  The report gives requests, requests/s, latency p50/p90/p99/p99.9/max in ms, errors
  (connect failures, connections closed by the server, timeouts, malformed replies, counted
  over the whole run) and how many replies carried each action word (the first word after
  "action=", upper-cased). JSON keys: requests, rps, p50_ms, p90_ms, p99_ms, p999_ms,
  max_ms, errors, error_kinds{connect,closed,timeout,malformed}, actions{WORD:count},
  connections, mode, duration_s, threads, seed, hot_set, warmup_requests,
  avg_request_bytes, server_cpu[{pid,user_us_per_request,system_us_per_request}], target,
  failure.
  Exit status: 0 after a measured run (even with errors), 1 if nothing could be measured
  (no connection, or the hot set could not be primed within 120 s), 2 on bad usage.

Null server mode: a minimal policy server that answers "action=dunno\n\n" to every request,
in order, on persistent connections, pipelined requests included. It does nothing else,
so it shows the most this machine can do. Runs until SIGINT or SIGTERM.

  --null-server ADDRESS  where to listen: HOST:PORT, [IPV6]:PORT or unix:/path
  --threads N            threads, each with its own io_context (default 1)
)";

struct CommandLine {
  std::optional<std::string> connect;
  std::optional<std::string> null_server;
  ClientOptions client;
  bool duration_given = false;
  bool json = false;
  bool help = false;
};

template <typename T>
bool ParseNumber(std::string_view text, T& value) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

bool ParseSeconds(std::string_view text, double min, double max, Seconds& value) {
  double seconds = 0;
  if (!ParseNumber(text, seconds) || seconds < min || seconds > max) return false;
  value = Seconds(seconds);
  return true;
}

// Parses argv; returns an error message, or an empty string on success.
std::string Parse(const std::vector<std::string_view>& args, CommandLine& line) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "-h" || arg == "--help") {
      line.help = true;
      continue;
    }
    if (arg == "--json") {
      line.json = true;
      continue;
    }
    if (!arg.starts_with("--")) return fmt::format("unexpected argument '{}'", arg);
    std::string_view name = arg;
    std::string_view value;
    if (size_t equals = arg.find('='); equals != std::string_view::npos) {
      name = arg.substr(0, equals);
      value = arg.substr(equals + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return fmt::format("option {} needs a value", arg);
    }

    ClientOptions& client = line.client;
    bool ok = true;
    if (name == "--connect") {
      line.connect = std::string(value);
    } else if (name == "--null-server") {
      line.null_server = std::string(value);
    } else if (name == "--connections") {
      ok = ParseNumber(value, client.connections) && client.connections >= 1 &&
           client.connections <= kMaxConnections;
    } else if (name == "--duration") {
      ok = ParseSeconds(value, 0.001, kMaxDurationSeconds, client.duration);
      line.duration_given = true;
    } else if (name == "--requests") {
      uint64_t max_requests = 0;
      ok = ParseNumber(value, max_requests) && max_requests >= 1;
      client.max_requests = max_requests;
    } else if (name == "--mode") {
      std::optional<TrafficMode> mode = ParseTrafficMode(value);
      ok = mode.has_value();
      if (ok) client.mode = *mode;
    } else if (name == "--hot-set") {
      ok = ParseNumber(value, client.hot_set_size) && client.hot_set_size >= 1 &&
           client.hot_set_size <= TrafficModel::kMaxHotSetSize;
    } else if (name == "--seed") {
      ok = ParseNumber(value, client.seed);
    } else if (name == "--warmup") {
      ok = ParseSeconds(value, 0, kMaxDurationSeconds, client.warmup);
    } else if (name == "--timeout") {
      ok = ParseSeconds(value, 0.01, kMaxTimeoutSeconds, client.timeout);
    } else if (name == "--cpu-pid") {
      int pid = 0;
      ok = ParseNumber(value, pid) && pid > 0;
      if (ok) client.cpu_pids.push_back(pid);
    } else if (name == "--threads") {
      ok = ParseNumber(value, client.threads) && client.threads >= 1 &&
           client.threads <= kMaxThreads;
    } else {
      return fmt::format("unknown option {}", name);
    }
    if (!ok) return fmt::format("bad value '{}' for {}", value, name);
  }
  if (line.help) return "";
  if (line.connect.has_value() == line.null_server.has_value()) {
    return "give exactly one of --connect and --null-server";
  }
  if (line.connect && !line.duration_given) return "--duration is required with --connect";
  return "";
}

// Each connection is a file descriptor; the default soft limit (1024) is below
// kMaxConnections, so raise it to the hard limit. Failure only matters if it is reached.
void RaiseFileLimit() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int Main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  CommandLine line;
  if (std::string error = Parse(args, line); !error.empty()) {
    fmt::print(stderr, "greylight-bench: {}\nTry 'greylight-bench --help'.\n", error);
    return 2;
  }
  if (line.help) {
    fmt::print("{}", kHelp);
    return 0;
  }
  RaiseFileLimit();

  std::string error;
  std::optional<Endpoint> endpoint =
      ParseEndpoint(line.connect ? *line.connect : *line.null_server, error);
  if (!endpoint) {
    fmt::print(stderr, "greylight-bench: {}\n", error);
    return 2;
  }
  if (line.null_server) {
    return RunNullServer({.listen = *endpoint, .threads = line.client.threads});
  }

  ClientOptions& options = line.client;
  options.target = *endpoint;
  options.threads = std::min(options.threads, options.connections);
  ClientReport report = RunClient(options);
  std::string text =
      line.json ? FormatJsonReport(options, report) : FormatTextReport(options, report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (!report.failure.empty()) {
    fmt::print(stderr, "greylight-bench: {}\n", report.failure);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace greylight::bench

int main(int argc, char** argv) { return greylight::bench::Main(argc, argv); }
