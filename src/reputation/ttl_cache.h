#pragma once

// A bounded cache of DNS answers kept for their TTL: entries expire on the monotonic clock
// (a wall-clock step neither keeps an answer forever nor drops them all), and the least
// recently used entry goes first when the cache is full.

#include <algorithm>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>

#include "util/clock.h"

namespace greylight::reputation {

// Not thread-safe: its owner serialises access (the DNS checkers use their strand).
template <typename Value>
class TtlCache {
 public:
  // Keeps at most `capacity` entries (0: caches nothing), each at most `max_ttl`.
  // `clock` must outlive the cache.
  TtlCache(const Clock& clock, size_t capacity, Seconds max_ttl)
      : clock_(clock), capacity_(capacity), max_ttl_(max_ttl) {}

  // The value stored under `key` if it has not expired (and marks it recently used),
  // else nullptr. The pointer is valid until the next Put.
  const Value* Get(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    if (it->second->expires <= clock_.Monotonic()) {
      entries_.erase(it->second);
      index_.erase(it);
      return nullptr;
    }
    entries_.splice(entries_.begin(), entries_, it->second);
    return &it->second->value;
  }

  // Stores `value` under `key` for min(ttl, max_ttl) from now, replacing any entry there.
  // A TTL of zero or less stores nothing (the answer may not be reused).
  void Put(const std::string& key, Value value, Seconds ttl) {
    ttl = std::min(ttl, max_ttl_);
    if (capacity_ == 0 || ttl <= Seconds(0)) return;
    const MonoTime expires = clock_.Monotonic() + ttl;
    auto it = index_.find(key);
    if (it != index_.end()) {
      it->second->value = std::move(value);
      it->second->expires = expires;
      entries_.splice(entries_.begin(), entries_, it->second);
      return;
    }
    entries_.push_front({key, std::move(value), expires});
    index_.emplace(key, entries_.begin());
    while (entries_.size() > capacity_) {
      index_.erase(entries_.back().key);
      entries_.pop_back();
    }
  }

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string key;
    Value value;
    MonoTime expires;
  };

  const Clock& clock_;
  const size_t capacity_;
  const Seconds max_ttl_;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_map<std::string, typename std::list<Entry>::iterator> index_;
};

}  // namespace greylight::reputation
