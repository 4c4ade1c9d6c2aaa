#include <fmt/format.h>

#include <iterator>

#include "bench/client.h"

namespace greylight::bench {
namespace {

double Milliseconds(std::chrono::nanoseconds latency) {
  return std::chrono::duration<double, std::milli>(latency).count();
}

// Action words come from the server under test, so they are escaped like any other input.
void AppendJsonString(std::string_view text, std::string& out) {
  out += '"';
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  out += '"';
}

double AverageRequestBytes(const ClientReport& report) {
  return report.requests == 0
             ? 0.0
             : static_cast<double>(report.request_bytes) / static_cast<double>(report.requests);
}

}  // namespace

std::string FormatTextReport(const ClientOptions& options, const ClientReport& report) {
  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "greylight-bench: {} mode {}, {} connection{}, {} thread{}, seed {}",
                 options.target.text, TrafficModeName(options.mode), options.connections,
                 options.connections == 1 ? "" : "s", options.threads,
                 options.threads == 1 ? "" : "s", options.seed);
  if (options.mode == TrafficMode::kHot) fmt::format_to(it, ", hot set {}", options.hot_set_size);
  out += '\n';
  if (!report.failure.empty()) fmt::format_to(it, "FAILED       {}\n", report.failure);
  fmt::format_to(it, "requests     {} in {:.2f} s = {:.1f} req/s (avg request {:.0f} bytes)\n",
                 report.requests, report.measured.count(), report.RequestsPerSecond(),
                 AverageRequestBytes(report));
  fmt::format_to(it, "latency ms   p50 {:.3f}  p90 {:.3f}  p99 {:.3f}  p99.9 {:.3f}  max {:.3f}\n",
                 Milliseconds(report.latency.Percentile(50)),
                 Milliseconds(report.latency.Percentile(90)),
                 Milliseconds(report.latency.Percentile(99)),
                 Milliseconds(report.latency.Percentile(99.9)), Milliseconds(report.latency.max()));
  fmt::format_to(it, "errors       {} (connect {}, closed {}, timeout {}, malformed {})\n",
                 report.errors.Total(), report.errors.connect, report.errors.closed,
                 report.errors.timeout, report.errors.malformed);
  out += "actions     ";
  if (report.actions.empty()) out += " none";
  for (const auto& [word, count] : report.actions) fmt::format_to(it, " {} {}", word, count);
  out += '\n';
  for (size_t i = 0; i < report.server_cpu.size(); ++i) {
    const std::optional<CpuTimes>& cpu = report.server_cpu[i];
    if (!cpu || report.requests == 0) {
      fmt::format_to(it, "server cpu   pid {}: not readable\n", options.cpu_pids[i]);
      continue;
    }
    const double per_request = 1e6 / static_cast<double>(report.requests);
    fmt::format_to(it, "server cpu   pid {}: {:.2f} us user + {:.2f} us system per request\n",
                   options.cpu_pids[i], cpu->user_seconds * per_request,
                   cpu->system_seconds * per_request);
  }
  if (report.warmup_requests > 0) {
    fmt::format_to(it, "warm-up      {} requests answered before measuring\n",
                   report.warmup_requests);
  }
  return out;
}

std::string FormatJsonReport(const ClientOptions& options, const ClientReport& report) {
  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(
      it,
      "{{\"requests\":{},\"rps\":{:.1f},\"p50_ms\":{:.3f},\"p90_ms\":{:.3f},"
      "\"p99_ms\":{:.3f},\"p999_ms\":{:.3f},\"max_ms\":{:.3f},\"errors\":{},"
      "\"error_kinds\":{{\"connect\":{},\"closed\":{},\"timeout\":{},\"malformed\":{}}},"
      "\"actions\":{{",
      report.requests, report.RequestsPerSecond(), Milliseconds(report.latency.Percentile(50)),
      Milliseconds(report.latency.Percentile(90)), Milliseconds(report.latency.Percentile(99)),
      Milliseconds(report.latency.Percentile(99.9)), Milliseconds(report.latency.max()),
      report.errors.Total(), report.errors.connect, report.errors.closed, report.errors.timeout,
      report.errors.malformed);
  bool first = true;
  for (const auto& [word, count] : report.actions) {
    if (!first) out += ',';
    first = false;
    AppendJsonString(word, out);
    fmt::format_to(it, ":{}", count);
  }
  fmt::format_to(it, "}},\"connections\":{},\"mode\":\"{}\",\"duration_s\":{:.3f},\"threads\":{},",
                 options.connections, TrafficModeName(options.mode), report.measured.count(),
                 options.threads);
  fmt::format_to(
      it, "\"seed\":{},\"hot_set\":{},\"warmup_requests\":{},\"avg_request_bytes\":{:.1f},",
      options.seed, options.hot_set_size, report.warmup_requests, AverageRequestBytes(report));
  out += "\"server_cpu\":[";
  for (size_t i = 0; i < report.server_cpu.size(); ++i) {
    if (i > 0) out += ',';
    const std::optional<CpuTimes>& cpu = report.server_cpu[i];
    if (!cpu || report.requests == 0) {
      fmt::format_to(it,
                     "{{\"pid\":{},\"user_us_per_request\":null,\"system_us_per_request\":null}}",
                     options.cpu_pids[i]);
      continue;
    }
    const double per_request = 1e6 / static_cast<double>(report.requests);
    fmt::format_to(
        it, "{{\"pid\":{},\"user_us_per_request\":{:.2f},\"system_us_per_request\":{:.2f}}}",
        options.cpu_pids[i], cpu->user_seconds * per_request, cpu->system_seconds * per_request);
  }
  out += "],\"target\":";
  AppendJsonString(options.target.text, out);
  out += ",\"failure\":";
  AppendJsonString(report.failure, out);
  out += "}\n";
  return out;
}

}  // namespace greylight::bench
