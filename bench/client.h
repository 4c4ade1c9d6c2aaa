#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench/endpoint.h"
#include "bench/latency_histogram.h"
#include "bench/process_cpu.h"
#include "bench/traffic_model.h"

namespace greylight::bench {

using Seconds = std::chrono::duration<double>;

struct ClientOptions {
  Endpoint target;
  int connections = 1;
  Seconds duration{10};
  std::optional<uint64_t> max_requests;  // Measured requests; the run ends when all are answered.
  TrafficMode mode = TrafficMode::kMixed;
  uint32_t hot_set_size = 1000;
  uint64_t seed = 1;
  // Time before measuring. In hot mode the hot set is sent once first, then the client idles
  // for this long, so that the server's greylisting delay can pass; otherwise it is load
  // that is not measured.
  Seconds warmup{0};
  Seconds timeout{5};  // Per request, and per connect attempt.
  int threads = 1;
  // Server processes whose CPU time the measured window used (--cpu-pid): read from /proc
  // when measuring starts and when it ends.
  std::vector<int> cpu_pids;
};

struct ErrorCounts {
  uint64_t connect = 0;    // Connect attempts that failed or timed out.
  uint64_t closed = 0;     // Connections the server closed, or that failed on write/read.
  uint64_t timeout = 0;    // Requests without a full reply within the timeout.
  uint64_t malformed = 0;  // Replies without an action, with an empty one, or followed by junk.

  uint64_t Total() const { return connect + closed + timeout + malformed; }
  void Add(const ErrorCounts& other);
};

struct ClientReport {
  uint64_t requests = 0;     // Replies received in the measured window.
  Seconds measured{0};       // Length of the measured window.
  LatencyHistogram latency;  // Send to full reply, measured requests only.
  ErrorCounts errors;        // Over the whole run, warm-up included.
  std::vector<std::pair<std::string, uint64_t>> actions;  // Upper-cased word, count; by count.
  uint64_t warmup_requests = 0;  // Replies received before measuring (hot set priming included).
  uint64_t request_bytes = 0;    // Bytes of the measured requests.
  std::string failure;           // Non-empty when the run could not measure (nothing connected).
  // Per ClientOptions::cpu_pids, the CPU time each used in the measured window; nullopt if
  // the process could not be read at both ends.
  std::vector<std::optional<CpuTimes>> server_cpu;

  double RequestsPerSecond() const;
};

// Runs the load as described by `options` and returns what it measured. Blocks for about
// connect + warm-up + duration; every phase is bounded in time. Uses options.threads
// threads, each with its own io_context and share of the connections.
ClientReport RunClient(const ClientOptions& options);

// Renders a report as human-readable text, or as one JSON object (one line).
std::string FormatTextReport(const ClientOptions& options, const ClientReport& report);
std::string FormatJsonReport(const ClientOptions& options, const ClientReport& report);

}  // namespace greylight::bench
