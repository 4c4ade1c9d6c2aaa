#include "engine/greylister.h"

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

namespace {

Decision Answer(Decision decision, Reason reason, std::string action) {
  decision.reason = reason;
  decision.action = std::move(action);
  return decision;
}

}  // namespace

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

  if (!list_lookup_) {
    DecideListed(std::move(decision), nullptr, headers, std::move(done), trace);
    return;
  }
  policy::IpAddress client = request.client;
  list_lookup_(client, [this, decision = std::move(decision), &headers, done = std::move(done),
                        trace](reputation::ListVerdict verdict) mutable {
    DecideListed(std::move(decision), &verdict, headers, std::move(done), trace);
  });
}

void Greylister::DecideListed(Decision decision, const reputation::ListVerdict* verdict,
                              HeaderTracker& headers, DecisionCallback done,
                              DecisionTrace* trace) const {
  const Request& request = *decision.request;
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

  RequestKeys request_keys = BuildRequestKeys(request.client, request.client_name, request.sender,
                                              request.recipient, key_scheme_);
  if (trace != nullptr) {
    trace->keys = request_keys;
    trace->auto_whitelist_enabled = auto_whitelist_;
  }
  store::CheckKeys keys;
  keys.triplet = std::move(request_keys.triplet);
  if (auto_whitelist_) keys.client = std::move(request_keys.client);
  if (std::shared_ptr<const reputation::Greytraps> greytraps = greytraps_.load()) {
    if (trace != nullptr) trace->greytraps_enabled = true;
    keys.trap = std::move(request_keys.trap);
    if (auto hit = greytraps->Match(request.recipient)) {
      keys.trap_hit = true;
      if (trace != nullptr) trace->greytrap = *hit;
      decision.trap_hit = std::move(hit);
    }
  }
  keys.reply = std::move(request_keys.reply);
  decision.group = std::move(request_keys.group);
  if (options_.keep_triplet_key) decision.key = keys.triplet;
  UnixTime now = request.now;
  store_.Check(keys, now,
               [this, decision = std::move(decision), &headers, done = std::move(done),
                trace](Result<policy::Transition> result) mutable {
                 done(Finish(std::move(decision), result, headers, trace));
               });
}

Decision Greylister::Finish(Decision decision, const Result<policy::Transition>& result,
                            HeaderTracker& headers, DecisionTrace* trace) const {
  const Request& request = *decision.request;
  if (!result.ok()) {
    decision.store_error = result.status().message();
    return Answer(std::move(decision), Reason::kStoreError, options_.store_error_action);
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
      return decision;
    case policy::Verdict::kPass:
    case policy::Verdict::kUndecided:
    case policy::Verdict::kOutbound:
      break;
  }
  decision.action = "DUNNO";
  if (t.reason == Reason::kClientAwl || t.reason == Reason::kReply) {
    decision.key.clear();  // the triplet was not consulted
    return decision;
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
  return decision;
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
