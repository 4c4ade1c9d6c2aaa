#pragma once

// The one place that drives c-ares: a channel whose sockets and retransmission timer are
// served by an Asio io_context, so DNS queries never block the event loop. The DNS list
// and SPF checkers ask it for records and get them back parsed (dns_records.h).

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include "reputation/dns_records.h"
#include "util/clock.h"
#include "util/status.h"

namespace greylight::reputation {

struct DnsResolverOptions {
  // How long c-ares spends on one query, over all its tries: it retransmits once within
  // it, so one lost UDP packet does not fail the query.
  std::chrono::milliseconds query_timeout{1000};
  // Resolvers to ask, in c-ares' CSV form ("127.0.0.1:5353,[::1]:53"); empty: the
  // system's /etc/resolv.conf.
  std::string servers;
  // TTL of a negative answer that carries no SOA record.
  Seconds default_negative_ttl{300};
};

using DnsStrand = asio::strand<asio::io_context::executor_type>;
using DnsCallback = std::function<void(const DnsRecords&)>;

// A c-ares channel on a strand of an io_context.
//
// Thread-safety: Query and Shutdown must be called on strand(); callbacks run there too.
// c-ares is not thread-safe, so the strand keeps it on one thread at a time whether one
// or several threads run the io_context.
class DnsResolver {
 public:
  // Creates a resolver on a new strand of `io`. Fails if c-ares cannot be initialised or
  // `options.servers` is not a valid server list. `io` must outlive the resolver and the
  // handlers it leaves there.
  static Result<std::unique_ptr<DnsResolver>> Create(asio::io_context& io,
                                                     const DnsResolverOptions& options);
  // Shuts down (as Shutdown) on the strand, later.
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  // Asks for the `type` records of `name` (no search domains; a trailing dot is
  // optional). Calls `done` exactly once on the strand, with the answer or a failure
  // (its error "timeout", "SERVFAIL", "shut down", ...), possibly before Query returns
  // (c-ares answers some failures at once). Queries for the same name and type while one
  // is in flight share it. Returns true if a new query went to c-ares (which may still
  // fail it at once), false if it joined one in flight or the resolver is shut down.
  // REQUIRES: called on strand().
  bool Query(const std::string& name, DnsType type, DnsCallback done);

  // Answers every waiting query with the failure "shut down", releases c-ares and its
  // sockets; later queries fail at once the same way. Idempotent.
  // REQUIRES: called on strand().
  void Shutdown();

  DnsStrand& strand();

  class Impl;  // public only so that the .cc's C callbacks can name it

 private:
  explicit DnsResolver(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace greylight::reputation
