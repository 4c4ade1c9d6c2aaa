#pragma once

// DNS allow lists (DNSWL) and block lists (DNSBL), looked up asynchronously with c-ares on
// the daemon's Asio io_context, so a slow or dead list server delays only the requests
// that wait for it, and each of those at most the per-query timeout. Answers (listed and
// not listed) are cached for their TTL; failures are not cached and count as "not listed"
// for the caller, who logs them.

#include <array>
#include <atomic>
#include <bitset>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <asio/io_context.hpp>

#include "policy/ip_address.h"
#include "reputation/list_verdict.h"
#include "util/clock.h"
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

struct DnsListOptions {
  static constexpr std::chrono::milliseconds kDefaultTimeout{1000};  // --dns-timeout
  static constexpr size_t kDefaultCacheEntries = 65536;
  static constexpr Seconds kDefaultMaxCacheTtl{3600};
  static constexpr Seconds kDefaultNegativeTtl{300};

  std::vector<DnsList> lists;
  // --dns-timeout: how long one Lookup waits for all its lists; a list that has not
  // answered by then counts as failed ("timeout"). c-ares retransmits once within it.
  std::chrono::milliseconds timeout = kDefaultTimeout;
  // Cached answers kept at most (least recently used ones are dropped first).
  size_t cache_entries = kDefaultCacheEntries;
  // Answers are cached for their TTL, but never longer than this.
  Seconds max_cache_ttl = kDefaultMaxCacheTtl;
  // TTL of a "not listed" answer that carries no SOA record (RFC 2308 negative TTL).
  Seconds default_negative_ttl = kDefaultNegativeTtl;
  // Resolvers to ask, in c-ares' CSV form ("127.0.0.1:5353,[::1]:53"); empty: the
  // system's /etc/resolv.conf.
  std::string servers;
};

// The meaning of one DNS response to a list query.
struct ListAnswer {
  enum class Kind { kListed, kNotListed, kFailed };
  Kind kind = Kind::kFailed;
  std::vector<std::array<uint8_t, 4>> addresses;  // kListed: the A records
  Seconds ttl{0};                                 // how long the answer may be cached (kFailed: 0)
  std::string error;                              // kFailed: why
};

// Reads a complete DNS response message: NOERROR with A records is kListed (TTL: the
// smallest of theirs), NXDOMAIN or NOERROR without A records is kNotListed (TTL: the SOA
// in the authority section, min(its TTL, its MINIMUM), else `default_negative_ttl`), any
// other rcode or a message that is truncated or malformed is kFailed. Never reads outside
// `message`. Pure; thread-safe.
ListAnswer ParseListResponse(std::span<const uint8_t> message, Seconds default_negative_ttl);

// The query name for `client` in `zone`: reversed octets for IPv4 ("5.113.0.203.zone"),
// reversed nibbles for IPv6 (32 labels); an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is
// queried as IPv4.
std::string ListQueryName(const policy::IpAddress& client, std::string_view zone);

// Counters since creation, for metrics.
struct DnsListStats {
  uint64_t lookups = 0;     // Lookup calls
  uint64_t cache_hits = 0;  // per list
  uint64_t queries = 0;     // DNS queries sent (one per list and address not cached,
                            // concurrent lookups of the same name share one)
  uint64_t failures = 0;    // per list and lookup: timeouts and errors
  uint64_t timeouts = 0;    // of which timeouts
};

// Looks clients up in the configured lists.
//
// Thread-safety: Lookup and Stats may be called from any thread. The checker runs its
// DNS work on a strand of `io` (c-ares is not thread-safe), so it works whether one or
// several threads run `io`.
class DnsListChecker {
 public:
  // Creates a checker on `io` for `options.lists` (which may be empty: then every Lookup
  // answers an empty verdict). Fails if c-ares cannot be initialised or
  // `options.servers` is not a valid server list. `io` and `clock` (for cache expiry)
  // must outlive the checker and the handlers it leaves on `io` when destroyed (in the
  // daemon both live for the whole process).
  static Result<std::unique_ptr<DnsListChecker>> Create(asio::io_context& io,
                                                        DnsListOptions options, const Clock& clock);
  // Stops the checker. Lookups still pending are answered on `io` with every unanswered
  // list as failed ("shut down"), if `io` runs again; otherwise their callbacks are
  // destroyed uncalled when `io` is.
  ~DnsListChecker();
  DnsListChecker(const DnsListChecker&) = delete;
  DnsListChecker& operator=(const DnsListChecker&) = delete;

  // Asks every list about `client` at once. Calls `done` exactly once, on a thread
  // running `io` and never before Lookup returns, within options.timeout (plus
  // scheduling) of the call; a cached answer needs no DNS query. Lookups of different
  // clients never wait for each other; lookups of the same name at the same time share
  // one DNS query, each still bounded by its own timeout.
  void Lookup(const policy::IpAddress& client, ListCallback done);

  DnsListStats Stats() const;

  class Impl;  // public only so that the .cc's C callbacks can name it

 private:
  explicit DnsListChecker(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace greylight::reputation
