#include "store/lmdb/lmdb_overlay.h"

#include <algorithm>
#include <cstring>
#include <functional>

namespace greylight::store {
namespace {

constexpr size_t kBlockBytes = size_t{64} << 10;
constexpr size_t kMinSlots = 1024;
// Clear() gives the memory back when a round used less than this share of it: a burst must
// not keep its memory for good.
constexpr size_t kShrinkRatio = 8;

uint32_t TagOf(uint64_t hash) { return static_cast<uint32_t>(hash >> 32); }

}  // namespace

uint64_t LmdbOverlay::Hash(std::string_view key) { return std::hash<std::string_view>()(key); }

size_t LmdbOverlay::Probe(std::string_view key, uint64_t hash) const {
  const size_t mask = slots_.size() - 1;
  const uint32_t tag = TagOf(hash);
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.entry == 0) return i;
    if (slot.tag == tag) {
      const Entry& entry = entries_[slot.entry - 1];
      if (entry.hash_ == hash && entry.key() == key) return i;
    }
  }
}

const LmdbOverlay::Entry* LmdbOverlay::Find(std::string_view key, uint64_t hash) const {
  if (entries_.empty()) return nullptr;
  const Slot& slot = slots_[Probe(key, hash)];
  if (slot.entry == 0) return nullptr;
  const Entry& entry = entries_[slot.entry - 1];
  return entry.erased() ? nullptr : &entry;
}

void LmdbOverlay::Put(std::string_view key, uint64_t hash, std::optional<std::string_view> value) {
  if ((entries_.size() + 1) * 2 > slots_.size()) Grow();
  Slot& slot = slots_[Probe(key, hash)];
  if (slot.entry == 0) {
    Entry entry;
    entry.hash_ = hash;
    entry.key_ = Keep(key);
    entry.key_size_ = static_cast<uint32_t>(key.size());
    entries_.push_back(entry);
    slot = Slot{TagOf(hash), static_cast<uint32_t>(entries_.size())};
  }
  Entry& entry = entries_[slot.entry - 1];
  if (value) {
    entry.state_ = Entry::State::kPut;
    entry.value_ = Keep(*value);
    entry.value_size_ = static_cast<uint32_t>(value->size());
  } else {
    entry.state_ = Entry::State::kDelete;
    entry.value_ = nullptr;
    entry.value_size_ = 0;
  }
}

void LmdbOverlay::Erase(std::string_view key, uint64_t hash) {
  if (entries_.empty()) return;
  const Slot& slot = slots_[Probe(key, hash)];
  if (slot.entry != 0) entries_[slot.entry - 1].state_ = Entry::State::kErased;
}

void LmdbOverlay::Grow() {
  std::vector<Slot> slots(std::max(kMinSlots, slots_.size() * 2));
  const size_t mask = slots.size() - 1;
  for (size_t e = 0; e < entries_.size(); ++e) {
    size_t i = entries_[e].hash_ & mask;
    while (slots[i].entry != 0) i = (i + 1) & mask;
    slots[i] = Slot{TagOf(entries_[e].hash_), static_cast<uint32_t>(e + 1)};
  }
  slots_.swap(slots);
}

const char* LmdbOverlay::Keep(std::string_view bytes) {
  if (bytes.empty()) return "";
  if (bytes.size() > kBlockBytes) {
    large_.push_back(std::make_unique_for_overwrite<char[]>(bytes.size()));
    std::memcpy(large_.back().get(), bytes.data(), bytes.size());
    return large_.back().get();
  }
  if (blocks_.empty() || block_used_ + bytes.size() > kBlockBytes) {
    if (!blocks_.empty()) ++block_;
    if (block_ == blocks_.size())
      blocks_.push_back(std::make_unique_for_overwrite<char[]>(kBlockBytes));
    block_used_ = 0;
  }
  char* copy = blocks_[block_].get() + block_used_;
  std::memcpy(copy, bytes.data(), bytes.size());
  block_used_ += bytes.size();
  return copy;
}

void LmdbOverlay::Clear() {
  const size_t used_blocks = blocks_.empty() ? 0 : block_ + 1;
  if (slots_.size() > kMinSlots && entries_.size() * 2 * kShrinkRatio < slots_.size()) {
    slots_ = std::vector<Slot>();
    entries_ = std::vector<Entry>();
  } else {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    entries_.clear();
  }
  if (blocks_.size() > 1 && used_blocks * kShrinkRatio < blocks_.size())
    blocks_.resize(used_blocks);
  block_ = 0;
  block_used_ = 0;
  large_.clear();
}

}  // namespace greylight::store
