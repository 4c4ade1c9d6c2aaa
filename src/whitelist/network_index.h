#pragma once

// Client networks of the whitelists: postgrey's IPv4 and IPv6 entry forms, and the index
// that finds the earliest entry covering an address. Internal to src/whitelist.

#include <optional>
#include <string_view>
#include <vector>

#include "util/status.h"
#include "whitelist/entries.h"

namespace greylight::whitelist {

// All client networks flattened into disjoint address intervals, each owned by the
// earliest entry covering it, so a lookup is one binary search whatever the number and
// mix of prefix lengths.
class NetworkIndex {
 public:
  void Add(Address128 first, Address128 last, EntryId id) { ranges_.push_back({first, last, id}); }

  // Builds the segments from the entries added. Call once, after the last Add.
  void Finish();
  // The earliest entry covering `address`, or kNoEntry. REQUIRES: Finish() was called.
  EntryId Find(Address128 address) const;

 private:
  struct Range {
    Address128 first;
    Address128 last;
    EntryId id;
  };
  std::vector<Range> ranges_;          // until Finish()
  std::vector<Address128> starts_{0};  // sorted segment starts, starts_[0] == 0
  std::vector<EntryId> owners_{kNoEntry};
};

// An entry's address interval, both ends included.
struct Network {
  Address128 first;
  Address128 last;
};

// The interval of `address`/`prefix_length` (the 128-bit space).
Network MakeNetwork(Address128 address, int prefix_length);

// The IPv4 forms postgrey recognises: a.b.c.d, a.b.c.d/nn, a.b.c (/24) and a.b (/16,
// where postgrey makes a /24). nullopt if `entry` has none of these shapes.
std::optional<Result<Network>> ParseIpv4Entry(std::string_view entry);

// postgrey hands anything with two ':' to NetAddr::IP as an IPv6 address or network.
Result<Network> ParseIpv6Entry(std::string_view entry);

}  // namespace greylight::whitelist
