#include "reputation/dns_lists.h"

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <utility>

#include "reputation/dns_resolver.h"
#include "reputation/ttl_cache.h"

namespace greylight::reputation {

// The checker's state lives on the resolver's strand. Every handler holds a shared_ptr to
// the Impl, so the object outlives the last callback even after the DnsListChecker that
// owns it is gone.
class DnsListChecker::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(std::unique_ptr<DnsResolver> resolver, DnsListOptions options, const Clock& clock)
      : resolver_(std::move(resolver)),
        options_(std::move(options)),
        cache_(clock, options_.cache_entries, options_.max_cache_ttl) {}

  void Lookup(const policy::IpAddress& client, ListCallback done) {
    stats_lookups_.fetch_add(1, std::memory_order_relaxed);
    asio::post(resolver_->strand(),
               [self = shared_from_this(), client, done = std::move(done)]() mutable {
                 self->Start(client, std::move(done));
               });
  }

  // Answers every pending lookup as failed ("shut down") and releases c-ares. Called on
  // the strand.
  void Close() { resolver_->Shutdown(); }

  DnsStrand& strand() { return resolver_->strand(); }

  DnsListStats Stats() const {
    DnsListStats stats;
    stats.lookups = stats_lookups_.load(std::memory_order_relaxed);
    stats.cache_hits = stats_cache_hits_.load(std::memory_order_relaxed);
    stats.queries = stats_queries_.load(std::memory_order_relaxed);
    stats.failures = stats_failures_.load(std::memory_order_relaxed);
    stats.timeouts = stats_timeouts_.load(std::memory_order_relaxed);
    return stats;
  }

 private:
  enum class ListState { kWaiting, kListed, kNotListed, kFailed };

  // One Lookup call.
  struct Pending {
    explicit Pending(DnsStrand& strand) : deadline(strand) {}
    ListCallback done;
    std::vector<ListState> states;
    std::vector<std::string> details;  // the accepted answer or the failure reason
    size_t remaining = 0;
    bool finished = false;
    asio::steady_timer deadline;
  };

  void Start(const policy::IpAddress& client, ListCallback done) {
    auto pending = std::make_shared<Pending>(resolver_->strand());
    pending->done = std::move(done);
    const size_t count = options_.lists.size();
    pending->states.assign(count, ListState::kWaiting);
    pending->details.assign(count, std::string());
    pending->remaining = count;
    for (size_t i = 0; i < count && !pending->finished; ++i) {
      std::string name = ListQueryName(client, options_.lists[i].zone);
      if (const ListAnswer* cached = cache_.Get(name)) {
        stats_cache_hits_.fetch_add(1, std::memory_order_relaxed);
        Apply(*pending, i, *cached);
        continue;
      }
      // The resolver's callbacks must not own the checker, which owns the resolver: a
      // cycle that would keep both alive if the io_context ends with queries in flight.
      auto on_answer = [weak = weak_from_this(), pending, i, name](const DnsRecords& records) {
        auto self = weak.lock();
        if (!self) return;
        ListAnswer answer = ListAnswerFrom(records);
        // Cache even if the lookup has timed out: a late answer still saves the next query.
        if (answer.kind != ListAnswer::Kind::kFailed) self->cache_.Put(name, answer, answer.ttl);
        self->Apply(*pending, i, answer);
      };
      if (resolver_->Query(name, DnsType::kA, std::move(on_answer))) {
        stats_queries_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (pending->remaining == 0) {
      Finish(*pending);
      return;
    }
    if (pending->finished) return;
    pending->deadline.expires_after(options_.timeout);
    pending->deadline.async_wait([self = shared_from_this(), pending](std::error_code ec) {
      if (ec || pending->finished) return;
      self->FailWaiting(*pending, "timeout");
      self->Finish(*pending);
    });
  }

  void CountFailure(std::string_view reason) {
    stats_failures_.fetch_add(1, std::memory_order_relaxed);
    if (reason == "timeout") stats_timeouts_.fetch_add(1, std::memory_order_relaxed);
  }

  void FailWaiting(Pending& pending, const char* reason) {
    for (size_t i = 0; i < pending.states.size(); ++i) {
      if (pending.states[i] != ListState::kWaiting) continue;
      pending.states[i] = ListState::kFailed;
      pending.details[i] = reason;
      --pending.remaining;
      CountFailure(reason);
    }
  }

  void Apply(Pending& pending, size_t index, const ListAnswer& answer) {
    if (pending.finished || pending.states[index] != ListState::kWaiting) return;
    const DnsList& list = options_.lists[index];
    switch (answer.kind) {
      case ListAnswer::Kind::kListed: {
        pending.states[index] = ListState::kNotListed;
        for (const auto& address : answer.addresses) {
          if (list.Accepts(address)) {
            pending.states[index] = ListState::kListed;
            pending.details[index] = AddressText(address);
            break;
          }
        }
        break;
      }
      case ListAnswer::Kind::kNotListed:
        pending.states[index] = ListState::kNotListed;
        break;
      case ListAnswer::Kind::kFailed:
        pending.states[index] = ListState::kFailed;
        pending.details[index] = answer.error;
        CountFailure(answer.error);
        break;
    }
    if (--pending.remaining == 0) Finish(pending);
  }

  void Finish(Pending& pending) {
    if (pending.finished) return;
    pending.finished = true;
    pending.deadline.cancel();
    ListVerdict verdict;
    for (size_t i = 0; i < pending.states.size(); ++i) {
      const DnsList& list = options_.lists[i];
      switch (pending.states[i]) {
        case ListState::kListed:
          (list.kind == ListKind::kAllow ? verdict.dnswl : verdict.dnsbl)
              .push_back({list.zone, pending.details[i]});
          break;
        case ListState::kFailed:
        case ListState::kWaiting:
          verdict.failures.push_back(list.zone + ": " + pending.details[i]);
          break;
        case ListState::kNotListed:
          break;
      }
    }
    ListCallback done = std::move(pending.done);
    if (done) done(std::move(verdict));
  }

  std::unique_ptr<DnsResolver> resolver_;
  const DnsListOptions options_;
  TtlCache<ListAnswer> cache_;  // by query name

  std::atomic<uint64_t> stats_lookups_{0};
  std::atomic<uint64_t> stats_cache_hits_{0};
  std::atomic<uint64_t> stats_queries_{0};
  std::atomic<uint64_t> stats_failures_{0};
  std::atomic<uint64_t> stats_timeouts_{0};
};

Result<std::unique_ptr<DnsListChecker>> DnsListChecker::Create(asio::io_context& io,
                                                               DnsListOptions options,
                                                               const Clock& clock) {
  DnsResolverOptions resolver_options;
  resolver_options.query_timeout = options.timeout;
  resolver_options.servers = options.servers;
  resolver_options.default_negative_ttl = options.default_negative_ttl;
  auto resolver = DnsResolver::Create(io, resolver_options);
  if (!resolver.ok()) return resolver.status();
  auto impl = std::make_shared<Impl>(std::move(resolver.value()), std::move(options), clock);
  return std::unique_ptr<DnsListChecker>(new DnsListChecker(std::move(impl)));
}

DnsListChecker::DnsListChecker(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

DnsListChecker::~DnsListChecker() {
  asio::post(impl_->strand(), [impl = impl_] { impl->Close(); });
}

void DnsListChecker::Lookup(const policy::IpAddress& client, ListCallback done) {
  impl_->Lookup(client, std::move(done));
}

DnsListStats DnsListChecker::Stats() const { return impl_->Stats(); }

}  // namespace greylight::reputation
