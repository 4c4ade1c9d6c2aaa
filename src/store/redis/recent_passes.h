#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "policy/greylist_state.h"
#include "util/clock.h"

namespace greylight::store {

// Which triplets passed on this daemon in the last kWindow seconds: a hint, never a fact.
// A triplet that passed moments ago usually passes again without a write (policy::Decide
// skips the last-seen update within GreylistTiming::kLastSeenRefresh), which a plain read
// of its records can settle; every other check goes straight to the check script. A wrong
// hint (another host trapped the client, an admin deleted the record, a hash collision)
// costs one read: the read's own decision then asks for a write and the script runs.
//
// Fixed size (kSlots entries of 8 bytes, one per hash bucket, the newest pass wins), so
// memory does not grow with traffic. Thread-safe: slots are relaxed atomics; a torn race
// only changes the hint.
class RecentPasses {
 public:
  static constexpr Seconds kWindow = policy::GreylistTiming::kLastSeenRefresh;
  static constexpr size_t kSlots = 1 << 16;

  // Records that the triplet `key` passed at `now`.
  void Note(std::string_view key, UnixTime now);
  // True if `key` passed within kWindow before `now` (or a colliding key did).
  bool Recent(std::string_view key, UnixTime now) const;

 private:
  // The upper 32 bits of the key's hash beside the pass time (32-bit Unix seconds).
  std::array<std::atomic<uint64_t>, kSlots> slots_{};
};

}  // namespace greylight::store
