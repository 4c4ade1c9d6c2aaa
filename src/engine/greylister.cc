#include "engine/greylister.h"

#include <atomic>

#include "policy/reply_key.h"
#include "policy/reply_text.h"

namespace greylight::engine {

using policy::Reason;

Greylister::Greylister(EngineOptions options, const policy::GreylistTiming& timing,
                       store::Store& store, const reputation::Psl* psl)
    : options_(std::move(options)),
      auto_whitelist_(timing.awl_threshold > 0),
      store_(store),
      key_scheme_{options_.keys, options_.lookup_by, psl} {}

void Greylister::SetWhitelists(std::shared_ptr<const policy::WhitelistMatcher> whitelists) {
  whitelists_.store(std::move(whitelists));
}

void Greylister::SetGreytraps(std::shared_ptr<const reputation::Greytraps> greytraps) {
  greytraps_.store(std::move(greytraps));
}

// The answers of the DNS list and SPF lookups of one request, joined.
struct Greylister::Lookups {
  std::atomic<int> remaining{0};
  Decision decision;
  DecisionCallback done;
  std::optional<reputation::ListVerdict> verdict;
  std::optional<spf::SpfResult> spf;
};

// One store check in flight: the decision so far, the keys (which the store reads until it
// answers) and where the answer goes. The store's callback holds only two pointers, so
// std::function keeps it inline, and the keys are built in the buffers of the thread's
// last check: a check on the embedded store allocates nothing.
struct Greylister::PendingCheck {
  Decision decision;
  DecisionCallback done;
  HeaderTracker* headers = nullptr;
  DecisionTrace* trace = nullptr;
  RequestKeys request_keys;
  store::CheckKeys keys;
};

namespace {

Decision Answer(Decision decision, Reason reason, std::string action) {
  decision.reason = reason;
  decision.action = std::move(action);
  return decision;
}

}  // namespace

std::unique_ptr<Greylister::PendingCheck>& Greylister::SpareCheck() {
  thread_local std::unique_ptr<PendingCheck> spare;
  return spare;
}

std::unique_ptr<Greylister::PendingCheck> Greylister::TakeSpareCheck() {
  if (SpareCheck()) return std::move(SpareCheck());
  return std::make_unique<PendingCheck>();
}

void Greylister::KeepSpareCheck(std::unique_ptr<PendingCheck> check) {
  SpareCheck() = std::move(check);
}

std::string Greylister::GreylistAction(const Request& request, Seconds missing) const {
  return policy::GreylistAction(options_.greylist_action, options_.greylist_text,
                                request.etrn_domain_sent, missing, request.recipient);
}

void Greylister::Decide(const protocol::PolicyRequest& wire, UnixTime real_now,
                        HeaderTracker& headers, DecisionCallback done, DecisionTrace* trace) const {
  ReadResult read = ReadRequest(wire, real_now, options_.allow_policy_test_time);
  Decision decision;
  if (!read.request) {
    decision.unreadable_detail = read.unreadable.detail;
    done(Answer(std::move(decision), read.unreadable.reason, "DUNNO"));
    return;
  }
  decision.request = *read.request;
  const Request& request = *decision.request;

  if (std::shared_ptr<const policy::WhitelistMatcher> whitelists = whitelists_.load()) {
    if (trace != nullptr) trace->whitelists_loaded = true;
    auto client_hit = whitelists->MatchClient(request.client_name, request.client);
    if (client_hit) {
      if (trace != nullptr) trace->client_whitelist = std::move(client_hit);
      done(Answer(std::move(decision), Reason::kClientWhitelist, "DUNNO"));
      return;
    }
    auto recipient_hit = whitelists->MatchRecipient(request.recipient);
    if (trace != nullptr) trace->recipient_whitelist_checked = true;
    if (recipient_hit) {
      if (trace != nullptr) trace->recipient_whitelist = std::move(recipient_hit);
      done(Answer(std::move(decision), Reason::kRecipientWhitelist, "DUNNO"));
      return;
    }
  }

  if (!list_lookup_ && !spf_lookup_) {
    DecideListed(std::move(decision), nullptr, nullptr, headers, std::move(done), trace);
    return;
  }
  // The DNS lists and SPF are asked at once; whichever answers last goes on. The answers
  // may come from different threads (each checker's strand), hence the atomic count.
  auto lookups = std::make_shared<Lookups>();
  lookups->remaining = (list_lookup_ ? 1 : 0) + (spf_lookup_ ? 1 : 0);
  lookups->decision = std::move(decision);
  lookups->done = std::move(done);
  auto arrive = [this, lookups, &headers, trace] {
    if (lookups->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    DecideListed(std::move(lookups->decision), lookups->verdict ? &*lookups->verdict : nullptr,
                 lookups->spf ? &*lookups->spf : nullptr, headers, std::move(lookups->done), trace);
  };
  // Read before asking: once both have answered, the decision has moved on.
  const Request& asked = *lookups->decision.request;
  const policy::IpAddress client = asked.client;
  if (spf_lookup_) {
    spf_lookup_(spf::SpfRequest::ForMailFrom(client, asked.sender, asked.helo_name),
                [lookups, arrive](spf::SpfResult result) {
                  lookups->spf = std::move(result);
                  arrive();
                });
  }
  if (list_lookup_) {
    list_lookup_(client, [lookups, arrive](reputation::ListVerdict verdict) {
      lookups->verdict = std::move(verdict);
      arrive();
    });
  }
}

void Greylister::DecideListed(Decision decision, const reputation::ListVerdict* verdict,
                              const spf::SpfResult* spf, HeaderTracker& headers,
                              DecisionCallback done, DecisionTrace* trace) const {
  const Request& request = *decision.request;
  // Only a narrow pass names a client; every other result (DNS trouble included) keeps
  // the --lookup-by keys.
  std::string_view spf_domain;
  if (spf != nullptr) {
    if (trace != nullptr) trace->spf = *spf;
    decision.spf = *spf;
    if (spf::UsablePass(*spf)) spf_domain = decision.spf->domain;
  }
  if (verdict != nullptr) {
    if (trace != nullptr) trace->lists = *verdict;
    decision.list_failures = verdict->failures;
    if (verdict->dnswl_listed()) {
      done(Answer(std::move(decision), Reason::kDnswl, "DUNNO"));
      return;
    }
    if (options_.greylist_only_listed && !verdict->dnsbl_listed()) {
      done(Answer(std::move(decision), Reason::kNotListed, "DUNNO"));
      return;
    }
  }

  std::unique_ptr<PendingCheck> check = TakeSpareCheck();
  RequestKeys& request_keys = check->request_keys;
  AssignRequestKeys(request_keys, request.client, request.client_name, request.sender,
                    request.recipient, key_scheme_, spf_domain);
  if (trace != nullptr) {
    trace->keys = request_keys;
    trace->auto_whitelist_enabled = auto_whitelist_;
  }
  // Swapped, not moved: both buffers stay with the PendingCheck for the next request.
  store::CheckKeys& keys = check->keys;
  keys.triplet.swap(request_keys.triplet);
  keys.client.clear();
  if (auto_whitelist_) keys.client.swap(request_keys.client);
  keys.trap.clear();
  keys.trap_hit = false;
  if (std::shared_ptr<const reputation::Greytraps> greytraps = greytraps_.load()) {
    if (trace != nullptr) trace->greytraps_enabled = true;
    keys.trap.swap(request_keys.trap);
    if (auto hit = greytraps->Match(request.recipient)) {
      keys.trap_hit = true;
      if (trace != nullptr) trace->greytrap = *hit;
      decision.trap_hit = std::move(hit);
    }
  }
  keys.reply.swap(request_keys.reply);
  decision.group = std::move(request_keys.group);
  if (options_.keep_triplet_key) decision.key = keys.triplet;
  const UnixTime now = request.now;
  check->decision = std::move(decision);
  check->done = std::move(done);
  check->headers = &headers;
  check->trace = trace;
  PendingCheck* pending = check.release();
  // The store calls back exactly once, maybe before Check returns: the PendingCheck becomes
  // the spare only after the answer went out, so a store still reading the keys then finds
  // them intact (the next request takes the spare only once this one has returned).
  store_.Check(pending->keys, now, [this, pending](Result<policy::Transition> result) {
    std::unique_ptr<PendingCheck> finished(pending);
    Finish(finished->decision, result, *finished->headers, finished->trace);
    finished->done(std::move(finished->decision));
    finished->done = nullptr;  // what the callback holds is not kept alive by the spare
    KeepSpareCheck(std::move(finished));
  });
}

void Greylister::Finish(Decision& decision, const Result<policy::Transition>& result,
                        HeaderTracker& headers, DecisionTrace* trace) const {
  const Request& request = *decision.request;
  if (!result.ok()) {
    decision.store_error = result.status().message();
    decision.reason = Reason::kStoreError;
    decision.action = options_.store_error_action;
    return;
  }
  const policy::Transition& t = result.value();
  if (trace != nullptr) trace->transition = t;
  decision.reason = t.reason;
  decision.first_corrected = t.first_corrected;
  decision.client_whitelisted = t.awl_threshold_reached;
  switch (policy::VerdictOf(t.reason)) {
    case policy::Verdict::kGreylist:
      decision.missing = t.missing;
      decision.action = GreylistAction(request, t.missing);
      return;
    case policy::Verdict::kPass:
    case policy::Verdict::kUndecided:
    case policy::Verdict::kOutbound:
      break;
  }
  decision.action = "DUNNO";
  if (t.reason == Reason::kClientAwl || t.reason == Reason::kReply) {
    decision.key.clear();  // the triplet was not consulted
    return;
  }
  if (t.reason == Reason::kPassFirst) {
    decision.delayed = request.now - t.first;
    if (headers.TakeNew(request.instance)) {
      decision.header_added = true;
      decision.action = "PREPEND " + policy::XGreylistHeader(options_.x_greylist_header,
                                                             decision.delayed, options_.version,
                                                             policy::HeaderDate(request.real_now),
                                                             options_.hostname);
    }
  }
}

void Greylister::RecordOutbound(const protocol::PolicyRequest& wire, UnixTime real_now,
                                DecisionCallback done) const {
  ReadResult read = ReadRequest(wire, real_now, options_.allow_policy_test_time);
  Decision decision;
  if (!read.request) {
    decision.unreadable_detail = read.unreadable.detail;
    done(Answer(std::move(decision), read.unreadable.reason, "DUNNO"));
    return;
  }
  decision.request = *read.request;
  const Request& request = *decision.request;
  if (request.sender.empty() || request.recipient.empty()) {
    done(Answer(std::move(decision), Reason::kNotRecorded, "DUNNO"));
    return;
  }
  std::string key = policy::ReplyKey(request.recipient, request.sender, options_.keys);
  if (options_.keep_triplet_key) decision.key = key;
  store_.RecordReply(key, request.now,
                     [decision = std::move(decision),
                      done = std::move(done)](Result<policy::ReplyRecord> result) mutable {
                       if (!result.ok()) {
                         decision.store_error = result.status().message();
                         done(Answer(std::move(decision), Reason::kStoreError, "DUNNO"));
                         return;
                       }
                       done(Answer(std::move(decision), Reason::kOutbound, "DUNNO"));
                     });
}

}  // namespace greylight::engine
