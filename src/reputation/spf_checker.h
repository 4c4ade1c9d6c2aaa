#pragma once

// SPF checks (RFC 7208) on the daemon's event loop: the sans-I/O evaluator of spf/ asks
// its DNS questions through c-ares (dns_resolver.h), every answer is cached for its TTL,
// and a whole check is bounded by one timeout, so it never blocks the loop and never
// waits longer than --dns-timeout.
//
// SPF may only save a client delay, never cost it a message: a caller treats anything
// but spf::UsablePass(result) (a temperror from a timeout included) as "no SPF".

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <asio/io_context.hpp>

#include "spf/spf_check.h"
#include "spf/spf_result.h"
#include "util/clock.h"
#include "util/status.h"

namespace greylight::reputation {

struct SpfCheckerOptions {
  static constexpr std::chrono::milliseconds kDefaultTimeout{1000};  // --dns-timeout
  static constexpr size_t kDefaultCacheEntries = 65536;
  static constexpr Seconds kDefaultMaxCacheTtl{3600};
  static constexpr Seconds kDefaultNegativeTtl{300};

  // How long one Check may take, all its DNS queries together; then it answers
  // temperror ("timeout"). Each query gets the same budget within c-ares.
  std::chrono::milliseconds timeout = kDefaultTimeout;
  // Cached DNS answers kept at most (least recently used ones are dropped first).
  size_t cache_entries = kDefaultCacheEntries;
  // Answers are cached for their TTL, but never longer than this.
  Seconds max_cache_ttl = kDefaultMaxCacheTtl;
  // TTL of a negative answer that carries no SOA record.
  Seconds default_negative_ttl = kDefaultNegativeTtl;
  // Resolvers to ask, in c-ares' CSV form ("127.0.0.1:5353"); empty: /etc/resolv.conf.
  std::string servers;
};

// Counters since creation, for metrics.
struct SpfCheckerStats {
  uint64_t checks = 0;      // Check calls
  uint64_t queries = 0;     // DNS queries sent
  uint64_t cache_hits = 0;  // answers taken from the cache
  uint64_t timeouts = 0;    // checks ended by the timeout
};

using SpfCallback = std::function<void(spf::SpfResult)>;

// Thread-safety: Check and Stats may be called from any thread; the checker's work runs
// on a strand of `io`.
class SpfChecker {
 public:
  // Creates a checker on `io`. Fails if c-ares cannot be initialised, options.servers is
  // not a valid server list or options.timeout is not positive. `io` and `clock` (for
  // cache expiry) must outlive the checker and the handlers it leaves on `io`.
  static Result<std::unique_ptr<SpfChecker>> Create(asio::io_context& io, SpfCheckerOptions options,
                                                    const Clock& clock);
  // Stops the checker: checks still running are answered temperror ("shut down") on
  // `io`, if it runs again.
  ~SpfChecker();
  SpfChecker(const SpfChecker&) = delete;
  SpfChecker& operator=(const SpfChecker&) = delete;

  // Evaluates check_host() for `request`. Calls `done` exactly once, on a thread running
  // `io` (the checker's strand) and never before Check returns, within options.timeout
  // (plus scheduling) of the call. Checks never wait for each other; questions asked by
  // several checks at once share one query.
  void Check(spf::SpfRequest request, SpfCallback done);

  SpfCheckerStats Stats() const;

 private:
  class Impl;
  explicit SpfChecker(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace greylight::reputation
