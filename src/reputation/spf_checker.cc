#include "reputation/spf_checker.h"

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <set>
#include <utility>

#include "reputation/dns_resolver.h"
#include "reputation/ttl_cache.h"

namespace greylight::reputation {
namespace {

// More questions than the RFC's limits allow (about 130: ten terms of an MX and its ten
// hosts, the record lookups and a "p" macro): an evaluator bug, never a real record.
constexpr size_t kMaxQuestionsPerCheck = 256;

DnsType DnsTypeFor(spf::RecordType type) {
  switch (type) {
    case spf::RecordType::kTxt:
      return DnsType::kTxt;
    case spf::RecordType::kA:
      return DnsType::kA;
    case spf::RecordType::kAaaa:
      return DnsType::kAaaa;
    case spf::RecordType::kMx:
      return DnsType::kMx;
    case spf::RecordType::kPtr:
      return DnsType::kPtr;
  }
  return DnsType::kTxt;
}

spf::DnsAnswer SpfAnswerFrom(const DnsRecords& records) {
  spf::DnsAnswer answer;
  switch (records.kind) {
    case DnsRecords::Kind::kFound:
      answer.status = spf::DnsAnswer::Status::kRecords;
      answer.texts = records.texts;
      answer.addresses = records.addresses;
      break;
    case DnsRecords::Kind::kEmpty:
      answer.status = spf::DnsAnswer::Status::kEmpty;
      break;
    case DnsRecords::Kind::kNxDomain:
      answer.status = spf::DnsAnswer::Status::kNxDomain;
      break;
    case DnsRecords::Kind::kFailed:
      answer.status = spf::DnsAnswer::Status::kError;
      break;
  }
  return answer;
}

std::string CacheKey(const spf::DnsQuestion& question) {
  return question.name + "/" + std::string(DnsTypeName(DnsTypeFor(question.type)));
}

spf::SpfResult TempError(const spf::SpfRequest& request, std::string problem) {
  spf::SpfResult result;
  result.code = spf::SpfCode::kTempError;
  result.domain = request.domain;
  result.problem = std::move(problem);
  return result;
}

}  // namespace

// The checker's state lives on the resolver's strand. Handlers hold a shared_ptr to the
// Impl, so it outlives the last callback even after the SpfChecker is gone.
class SpfChecker::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(std::unique_ptr<DnsResolver> resolver, SpfCheckerOptions options, const Clock& clock)
      : resolver_(std::move(resolver)),
        options_(std::move(options)),
        cache_(clock, options_.cache_entries, options_.max_cache_ttl) {}

  void Check(spf::SpfRequest request, SpfCallback done) {
    checks_.fetch_add(1, std::memory_order_relaxed);
    auto pending = std::make_shared<Pending>(resolver_->strand());
    pending->request = std::move(request);
    pending->done = std::move(done);
    asio::post(resolver_->strand(), [self = shared_from_this(), pending] {
      pending->deadline.expires_after(self->options_.timeout);
      pending->deadline.async_wait([self, pending](std::error_code ec) {
        if (ec || pending->finished) return;
        self->timeouts_.fetch_add(1, std::memory_order_relaxed);
        self->Finish(*pending, TempError(pending->request, "timeout"));
      });
      self->Step(pending);
    });
  }

  void Close() { resolver_->Shutdown(); }

  DnsStrand& strand() { return resolver_->strand(); }

  SpfCheckerStats Stats() const {
    SpfCheckerStats stats;
    stats.checks = checks_.load(std::memory_order_relaxed);
    stats.queries = queries_.load(std::memory_order_relaxed);
    stats.cache_hits = cache_hits_.load(std::memory_order_relaxed);
    stats.timeouts = timeouts_.load(std::memory_order_relaxed);
    return stats;
  }

 private:
  // One Check call.
  struct Pending {
    explicit Pending(DnsStrand& strand) : deadline(strand) {}
    spf::SpfRequest request;
    SpfCallback done;
    spf::DnsAnswers answers;
    std::set<spf::DnsQuestion> outstanding;
    size_t asked = 0;
    bool stepping = false;  // inside Step: a callback from inside Query must not re-enter
    bool finished = false;
    asio::steady_timer deadline;
  };

  // Runs the evaluator until it has a result or waits for DNS.
  void Step(const std::shared_ptr<Pending>& pending) {
    while (!pending->finished) {
      spf::SpfStep step = spf::CheckHost(pending->request, pending->answers);
      if (step.result) return Finish(*pending, std::move(*step.result));
      pending->stepping = true;
      for (const spf::DnsQuestion& question : step.questions) {
        if (pending->answers.contains(question) || pending->outstanding.contains(question)) {
          continue;
        }
        if (++pending->asked > kMaxQuestionsPerCheck) {
          pending->stepping = false;
          return Finish(*pending, TempError(pending->request, "too many DNS questions"));
        }
        const std::string key = CacheKey(question);
        if (const spf::DnsAnswer* cached = cache_.Get(key)) {
          cache_hits_.fetch_add(1, std::memory_order_relaxed);
          pending->answers[question] = *cached;
          continue;
        }
        pending->outstanding.insert(question);
        // A weak reference: the resolver's callbacks must not own the checker, which owns
        // the resolver (a cycle if the io_context ends with queries in flight).
        auto on_answer = [weak = weak_from_this(), pending, question,
                          key](const DnsRecords& records) {
          auto self = weak.lock();
          if (!self) return;
          spf::DnsAnswer answer = SpfAnswerFrom(records);
          // Cache even if the check has ended: a late answer still saves the next query.
          if (records.kind != DnsRecords::Kind::kFailed) self->cache_.Put(key, answer, records.ttl);
          if (pending->finished) return;
          pending->outstanding.erase(question);
          pending->answers[question] = std::move(answer);
          if (!pending->stepping && pending->outstanding.empty()) self->Step(pending);
        };
        if (resolver_->Query(question.name, DnsTypeFor(question.type), std::move(on_answer))) {
          queries_.fetch_add(1, std::memory_order_relaxed);
        }
      }
      pending->stepping = false;
      if (!pending->outstanding.empty()) return;  // the last answer steps again
    }
  }

  void Finish(Pending& pending, spf::SpfResult result) {
    if (pending.finished) return;
    pending.finished = true;
    pending.deadline.cancel();
    SpfCallback done = std::move(pending.done);
    if (done) done(std::move(result));
  }

  std::unique_ptr<DnsResolver> resolver_;
  const SpfCheckerOptions options_;
  TtlCache<spf::DnsAnswer> cache_;  // by name and type

  std::atomic<uint64_t> checks_{0};
  std::atomic<uint64_t> queries_{0};
  std::atomic<uint64_t> cache_hits_{0};
  std::atomic<uint64_t> timeouts_{0};
};

Result<std::unique_ptr<SpfChecker>> SpfChecker::Create(asio::io_context& io,
                                                       SpfCheckerOptions options,
                                                       const Clock& clock) {
  DnsResolverOptions resolver_options;
  resolver_options.query_timeout = options.timeout;
  resolver_options.servers = options.servers;
  resolver_options.default_negative_ttl = options.default_negative_ttl;
  auto resolver = DnsResolver::Create(io, resolver_options);
  if (!resolver.ok()) return resolver.status();
  auto impl = std::make_shared<Impl>(std::move(resolver.value()), std::move(options), clock);
  return std::unique_ptr<SpfChecker>(new SpfChecker(std::move(impl)));
}

SpfChecker::SpfChecker(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

SpfChecker::~SpfChecker() {
  asio::post(impl_->strand(), [impl = impl_] { impl->Close(); });
}

void SpfChecker::Check(spf::SpfRequest request, SpfCallback done) {
  impl_->Check(std::move(request), std::move(done));
}

SpfCheckerStats SpfChecker::Stats() const { return impl_->Stats(); }

}  // namespace greylight::reputation
