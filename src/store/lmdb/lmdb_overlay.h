#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace greylight::store {

// The updates of one table that were acknowledged and are not committed yet: for each key,
// the value to put, or a deletion. Every request looks its keys up in up to four of these
// before LMDB, and the one of new triplets holds a second of them (tens of thousands), so a
// lookup is a probe of one flat array: a miss costs a cache line, not a bucket, a node and a
// key in three places. A key's hash is computed once (Hash) for every overlay it is looked
// up in. Keys and values are copied into blocks of bytes that Clear() keeps: once the
// overlays have grown to the traffic, an update allocates nothing.
class LmdbOverlay {
 public:
  // One key's update. Its views stay valid until Clear(), whatever is put meanwhile.
  class Entry {
   public:
    std::string_view key() const { return {key_, key_size_}; }
    // The value to put; nullopt for a deletion.
    std::optional<std::string_view> value() const {
      if (state_ != State::kPut) return std::nullopt;
      return std::string_view(value_, value_size_);
    }
    // Taken back by Erase(): the overlay holds nothing for the key.
    bool erased() const { return state_ == State::kErased; }
    uint64_t hash() const { return hash_; }

   private:
    friend class LmdbOverlay;
    enum class State : uint8_t { kPut, kDelete, kErased };
    uint64_t hash_ = 0;
    const char* key_ = nullptr;
    const char* value_ = nullptr;
    uint32_t key_size_ = 0;
    uint32_t value_size_ = 0;
    State state_ = State::kErased;
  };

  static uint64_t Hash(std::string_view key);

  // The update held for `key` (whose Hash is `hash`), or nullptr.
  const Entry* Find(std::string_view key, uint64_t hash) const;
  // Holds `value` (nullopt: a deletion) for `key`, replacing what was held.
  void Put(std::string_view key, uint64_t hash, std::optional<std::string_view> value);
  // Holds nothing for `key` any more.
  void Erase(std::string_view key, uint64_t hash);

  // Every update in the order first put, erased ones included (skip them).
  std::span<const Entry> entries() const { return entries_; }
  // The number of entries(): an upper bound of the updates held.
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // Holds nothing, keeping the memory for the next updates unless it is far more than
  // this round needed.
  void Clear();

 private:
  // A slot of the open-addressed index: the high half of the key's hash, and its entry's
  // position + 1 (0: free).
  struct Slot {
    uint32_t tag = 0;
    uint32_t entry = 0;
  };
  // The index of the slot of `key`, or of the free slot where it would go.
  // REQUIRES: !slots_.empty().
  size_t Probe(std::string_view key, uint64_t hash) const;
  void Grow();
  // Copies `bytes` into the blocks; the copy stays put until Clear().
  const char* Keep(std::string_view bytes);

  std::vector<Slot> slots_;  // a power of two in size, at most half used
  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<char[]>> blocks_;  // kBlockBytes each
  size_t block_ = 0;                             // the block being filled
  size_t block_used_ = 0;                        // its bytes used
  std::vector<std::unique_ptr<char[]>> large_;   // one per value larger than a block
};

}  // namespace greylight::store
