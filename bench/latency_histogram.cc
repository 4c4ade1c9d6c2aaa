#include "bench/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace greylight::bench {

LatencyHistogram::LatencyHistogram() : counts_(kBucketCount, 0) {}

size_t LatencyHistogram::BucketOf(uint64_t nanos) {
  if (nanos < kSubBuckets) return static_cast<size_t>(nanos);
  // The top kSubBucketBits + 1 bits of the value pick the bucket; the rest is the error.
  int exponent = std::bit_width(nanos) - 1;
  int shift = exponent - kSubBucketBits;
  uint64_t mantissa = nanos >> shift;  // In [kSubBuckets, 2 * kSubBuckets).
  return static_cast<size_t>(kSubBuckets + static_cast<uint64_t>(shift) * kSubBuckets +
                             (mantissa - kSubBuckets));
}

uint64_t LatencyHistogram::UpperEdgeOf(size_t bucket) {
  if (bucket < kSubBuckets) return bucket;
  uint64_t shift = (bucket - kSubBuckets) / kSubBuckets;
  uint64_t mantissa = kSubBuckets + (bucket - kSubBuckets) % kSubBuckets;
  return ((mantissa + 1) << shift) - 1;
}

void LatencyHistogram::Record(std::chrono::nanoseconds latency) {
  uint64_t nanos = latency.count() < 0 ? 0 : static_cast<uint64_t>(latency.count());
  ++counts_[BucketOf(nanos)];
  ++count_;
  max_ = std::max(max_, nanos);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

std::chrono::nanoseconds LatencyHistogram::Percentile(double percent) const {
  if (count_ == 0) return std::chrono::nanoseconds(0);
  auto rank = static_cast<uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      return std::chrono::nanoseconds(static_cast<int64_t>(std::min(UpperEdgeOf(i), max_)));
    }
  }
  return max();
}

}  // namespace greylight::bench
