#include "store/redis/recent_passes.h"

#include <functional>

namespace greylight::store {
namespace {

struct Slot {
  size_t index;
  uint64_t tag;  // upper 32 bits of the entry
};

Slot SlotOf(std::string_view key) {
  const uint64_t hash = std::hash<std::string_view>{}(key);
  return {static_cast<size_t>(hash % RecentPasses::kSlots), hash & 0xffffffff00000000u};
}

}  // namespace

void RecentPasses::Note(std::string_view key, UnixTime now) {
  const Slot slot = SlotOf(key);
  const auto seconds = static_cast<uint32_t>(ToUnixSeconds(now));
  slots_[slot.index].store(slot.tag | seconds, std::memory_order_relaxed);
}

bool RecentPasses::Recent(std::string_view key, UnixTime now) const {
  const Slot slot = SlotOf(key);
  const uint64_t entry = slots_[slot.index].load(std::memory_order_relaxed);
  if (entry == 0 || (entry & 0xffffffff00000000u) != slot.tag) return false;
  const auto passed_at = static_cast<int64_t>(entry & 0xffffffffu);
  const int64_t age = ToUnixSeconds(now) - passed_at;
  return age >= 0 && age < kWindow.count();
}

}  // namespace greylight::store
