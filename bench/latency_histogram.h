#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace greylight::bench {

// Log-linear histogram of latencies: exact below 128 ns, then 128 buckets per power of two,
// so any reported percentile is within 0.8% of a recorded value. Fixed size (about 58 KiB),
// so recording never allocates, and a run of any length fits. Not thread-safe: keep one per
// thread and Merge() at the end.
class LatencyHistogram {
 public:
  LatencyHistogram();

  void Record(std::chrono::nanoseconds latency);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  std::chrono::nanoseconds max() const { return std::chrono::nanoseconds(max_); }

  // Returns the smallest recorded latency L (rounded up to its bucket's upper edge, capped
  // at max()) such that at least `percent`% of the recorded latencies are <= L; zero when
  // empty. REQUIRES: 0 <= percent <= 100.
  std::chrono::nanoseconds Percentile(double percent) const;

 private:
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;
  static constexpr size_t kBucketCount = kSubBuckets + (64 - kSubBucketBits) * kSubBuckets;

  static size_t BucketOf(uint64_t nanos);
  static uint64_t UpperEdgeOf(size_t bucket);

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

}  // namespace greylight::bench
