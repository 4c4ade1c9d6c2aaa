#pragma once

// DNS allow lists (DNSWL) and block lists (DNSBL), looked up asynchronously with c-ares on
// the daemon's Asio io_context, so a slow or dead list server delays only the requests
// that wait for it, and each of those at most the per-query timeout. Answers (listed and
// not listed) are cached for their TTL; failures are not cached and count as "not listed"
// for the caller, who logs them.
//
// The grammar of the lists is dns_list.h, the reading of answers dns_list_answer.h, the
// c-ares driver dns_resolver.h.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "policy/ip_address.h"
#include "reputation/dns_list.h"
#include "reputation/dns_list_answer.h"
#include "reputation/list_verdict.h"
#include "util/clock.h"
#include "util/status.h"

namespace greylight::reputation {

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

 private:
  class Impl;
  explicit DnsListChecker(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace greylight::reputation
