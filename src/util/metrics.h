#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace greylight::metrics {

// Lock-free instruments for the Prometheus text format. Updates are relaxed atomics, so
// recording from the request path costs a few nanoseconds and never blocks.

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A histogram with fixed upper bounds (in the unit of the observed values).
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);
  // Appends the _bucket, _sum and _count lines of `name` with extra `labels` ("a=\"b\"" or "").
  void Render(std::string& out, std::string_view name, std::string_view labels = {}) const;

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> counts_;  // one per bound, plus +Inf
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Appends "# HELP" and "# TYPE" lines.
void RenderHeader(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help);
// Appends one sample line; `labels` is the inside of {...} or empty.
void RenderSample(std::string& out, std::string_view name, std::string_view labels, double value);

}  // namespace greylight::metrics
