#pragma once

// The DNS list grammar: what --dnswl and --dnsbl accept ("ZONE[=codes]"), which answers
// count as "listed", and the name a client is looked up by. No I/O.

#include <array>
#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/ip_address.h"
#include "util/status.h"

namespace greylight::reputation {

// --dnswl or --dnsbl.
enum class ListKind { kAllow, kBlock };
std::string_view ListKindName(ListKind kind);  // "dnswl" / "dnsbl"

// The answers (A records) that count as "listed" for one list. A pattern is four octet
// sets; an answer matches when each of its octets is in the set at its position.
struct CodePattern {
  std::array<std::bitset<256>, 4> octets;
  bool Matches(const std::array<uint8_t, 4>& answer) const;
};

// One configured list: "ZONE[=codes]".
//
// codes is a comma-separated list of patterns, each either
//   * four dot-separated octets, each a number, or a bracketed set of numbers and
//     inclusive ranges separated by ';' (postscreen's syntax): "127.0.0.2",
//     "127.0.0.[2..11]", "127.0.[0..255].[2;4;10..11]"; or
//   * an address with a prefix length: "127.0.0.0/24".
// Without "=codes" any answer in 127.0.0.0/8 counts except 127.255.255.0/24, which
// Spamhaus and others return for refused or rate-limited queries (an error, not a
// listing); an answer outside 127/8 (a resolver that rewrites NXDOMAIN) never counts by
// default.
struct DnsList {
  ListKind kind = ListKind::kBlock;
  std::string zone;                // lowercase, no trailing dot: "list.dnswl.org"
  std::vector<CodePattern> codes;  // never empty after Parse (the default is filled in)
  std::string spec;                // as written, for logs

  // Parses `spec`. Fails with a message naming the option and the bad part.
  static Result<DnsList> Parse(ListKind kind, std::string_view spec);
  // True if `answer` is one of this list's codes.
  bool Accepts(const std::array<uint8_t, 4>& answer) const;
};

// The query name for `client` in `zone`: reversed octets for IPv4 ("5.113.0.203.zone"),
// reversed nibbles for IPv6 (32 labels); an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is
// queried as IPv4.
std::string ListQueryName(const policy::IpAddress& client, std::string_view zone);

// "127.0.0.2": a list answer as logs show it.
std::string AddressText(const std::array<uint8_t, 4>& address);

}  // namespace greylight::reputation
