#pragma once

// Types the whitelist module's parts share: entry numbers and the 128-bit address space.
// Internal to src/whitelist.

#include <cstdint>
#include <limits>

#include "policy/ip_address.h"

namespace greylight::whitelist {

// Entries are numbered in file order (all client files, then separately all recipient
// files); the hit reported is the lowest-numbered matching entry, as postgrey returns
// the first match of its list.
using EntryId = uint32_t;
inline constexpr EntryId kNoEntry = std::numeric_limits<EntryId>::max();

// Addresses live in one 128-bit space, IPv4 a.b.c.d being ::a.b.c.d: that is how
// NetAddr::IP compares them, which gives postgrey's cross-family quirk for free.
__extension__ typedef unsigned __int128 Address128;
inline constexpr Address128 kAllOnes = ~Address128{0};
inline constexpr int kIpv4InIpv6PrefixOffset = 96;

inline Address128 ToAddress128(const policy::IpAddress& address) {
  Address128 value = 0;
  for (int i = 0; i < address.bits() / 8; ++i) value = value << 8 | address.bytes[i];
  return value;
}

inline Address128 PrefixMask(int prefix_length) {
  return prefix_length == 0 ? 0 : kAllOnes << (128 - prefix_length);
}

}  // namespace greylight::whitelist
