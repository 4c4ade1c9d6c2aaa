#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace greylight::bench {

enum class TrafficMode {
  kNew,    // Every request carries a triplet never sent before.
  kMixed,  // New triplets, retries of earlier triplets, and earlier senders to new recipients.
  kHot,    // Triplets drawn from a fixed hot set, which passes once it has been retried.
};

std::optional<TrafficMode> ParseTrafficMode(std::string_view name);
std::string_view TrafficModeName(TrafficMode mode);

// Generates full Postfix 3.7 smtpd_access_policy requests (RCPT stage, every attribute in
// Postfix's order, about 640 bytes) with realistic values.
//
// Request number `index` of a run is a pure function of (mode, seed, hot set size, index):
// no state is kept, so any number of connections and threads can take indices from one
// shared counter and the run sends the same requests for the same seed, whatever the
// timing. Mixed mode finds "earlier" triplets by walking back a deterministic chain of
// indices instead of remembering them. Thread-safe (const).
class TrafficModel {
 public:
  // Upper bounds of the index spaces, so that new triplets never collide with hot ones.
  static constexpr uint64_t kMaxIndex = uint64_t{1} << 46;
  static constexpr uint32_t kMaxHotSetSize = 10'000'000;

  // REQUIRES: 1 <= hot_set_size <= kMaxHotSetSize.
  TrafficModel(TrafficMode mode, uint64_t seed, uint32_t hot_set_size);

  // Appends request number `index` of the stream to `out`. REQUIRES: index < kMaxIndex.
  void AppendRequest(uint64_t index, std::string& out) const;

  // Appends a request that introduces hot triplet `hot_index` to the server, used to prime
  // the hot set before measuring. REQUIRES: hot_index < hot_set_size.
  void AppendHotSetRequest(uint32_t hot_index, std::string& out) const;

  TrafficMode mode() const { return mode_; }
  uint32_t hot_set_size() const { return hot_set_size_; }

 private:
  // A triplet is named by two ids: the origin (client and sender, which travel together)
  // and the recipient. Distinct recipient ids give distinct recipient addresses.
  struct TripletIds {
    uint64_t origin = 0;
    uint64_t recipient = 0;
  };

  TripletIds TripletFor(uint64_t index) const;
  void AppendPolicyRequest(TripletIds triplet, uint64_t message_key, std::string& out) const;

  TrafficMode mode_;
  uint64_t seed_;
  uint32_t hot_set_size_;
};

}  // namespace greylight::bench
