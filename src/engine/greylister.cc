#include "engine/greylister.h"

#include <fmt/format.h>

#include <charconv>

#include "policy/reply_text.h"

namespace greylight::engine {

namespace attr = protocol::attr;

bool HeaderTracker::TakeNew(std::optional<std::string_view> instance) {
  if (!instance) return true;
  for (size_t i = 0; i < size_; ++i) {
    if (recent_[i] == *instance) return false;
  }
  recent_[next_].assign(*instance);
  next_ = (next_ + 1) % kRemembered;
  if (size_ < kRemembered) ++size_;
  return true;
}

std::string_view OutcomeAction(Outcome outcome) {
  switch (outcome) {
    case Outcome::kGreylistNew:
    case Outcome::kGreylistEarlyRetry:
    case Outcome::kGreytrap:
      return "greylist";
    case Outcome::kPassFirst:
    case Outcome::kPassTriplet:
    case Outcome::kClientWhitelist:
    case Outcome::kRecipientWhitelist:
    case Outcome::kClientAwl:
    case Outcome::kDnswl:
    case Outcome::kNotListed:
      return "pass";
    case Outcome::kMissingAttribute:
    case Outcome::kBadClientAddress:
    case Outcome::kBadTestTime:
    case Outcome::kStoreError:
      return "dunno";
  }
  return "dunno";
}

std::string_view OutcomeReason(Outcome outcome) {
  switch (outcome) {
    case Outcome::kGreylistNew:
      return "new";
    case Outcome::kGreylistEarlyRetry:
      return "early-retry";
    case Outcome::kPassFirst:
    case Outcome::kPassTriplet:
      return "triplet found";
    case Outcome::kClientWhitelist:
      return "client whitelist";
    case Outcome::kRecipientWhitelist:
      return "recipient whitelist";
    case Outcome::kClientAwl:
      return "client AWL";
    case Outcome::kDnswl:
      return "dnswl";
    case Outcome::kNotListed:
      return "not listed";
    case Outcome::kGreytrap:
      return "greytrap";
    case Outcome::kMissingAttribute:
      return "attribute missing";
    case Outcome::kBadClientAddress:
      return "bad client address";
    case Outcome::kBadTestTime:
      return "bad policy_test_time";
    case Outcome::kStoreError:
      return "store error";
  }
  return "";
}

Greylister::Greylister(EngineOptions options, store::Store& store, const reputation::Psl* psl)
    : options_(std::move(options)),
      store_(store),
      key_scheme_{options_.keys, options_.lookup_by, psl} {}

void Greylister::SetWhitelists(std::shared_ptr<const policy::WhitelistMatcher> whitelists) {
  whitelists_.store(std::move(whitelists));
}

void Greylister::SetGreytraps(std::shared_ptr<const reputation::Greytraps> greytraps) {
  greytraps_.store(std::move(greytraps));
}

namespace {

Decision DunnoWithWarning(Outcome outcome, std::string warning) {
  Decision decision;
  decision.action = "DUNNO";
  decision.outcome = outcome;
  decision.logs.push_back({log::Level::kWarning, std::move(warning)});
  return decision;
}

}  // namespace

LogLine Greylister::ActionLog(const protocol::PolicyRequest& request, std::string_view action,
                              std::string_view reason, std::string_view number_name,
                              long long number, std::string_view key,
                              std::string_view group) const {
  if (options_.log_format == EngineOptions::LogFormat::kPostgrey) {
    std::string extra = number_name == "delay" ? fmt::format("delay={}", number) : std::string();
    if (!group.empty()) {
      if (!extra.empty()) extra += ", ";
      extra += "group=";
      log::AppendEscaped(extra, group);
    }
    return {log::Level::kNotice, policy::ActionLogLine(request, action, reason, extra)};
  }
  std::string json = "{\"action\":";
  log::AppendJsonString(json, action);
  json += ",\"reason\":";
  log::AppendJsonString(json, reason);
  for (std::string_view name : {attr::kQueueId, attr::kClientName, attr::kClientAddress,
                                attr::kSender, attr::kRecipient, attr::kInstance}) {
    if (auto value = request.Get(name)) {
      json += ",\"";
      json += name;
      json += "\":";
      log::AppendJsonString(json, *value);
    }
  }
  if (!number_name.empty()) json += fmt::format(",\"{}\":{}", number_name, number);
  if (!key.empty()) {
    json += ",\"key\":";
    log::AppendJsonString(json, key);
  }
  if (!group.empty()) {
    json += ",\"group\":";
    log::AppendJsonString(json, group);
  }
  json += "}";
  return {log::Level::kNotice, std::move(json)};
}

Decision Greylister::Pass(Outcome outcome, const protocol::PolicyRequest& request,
                          std::vector<LogLine> before) const {
  Decision decision;
  decision.logs = std::move(before);
  decision.action = "DUNNO";
  decision.outcome = outcome;
  if (log::Enabled(log::Level::kNotice)) {
    decision.logs.push_back(ActionLog(request, "pass", OutcomeReason(outcome)));
  }
  return decision;
}

void Greylister::Decide(const protocol::PolicyRequest& request, UnixTime real_now,
                        HeaderTracker& headers, DecisionCallback done) const {
  UnixTime now = real_now;
  if (options_.allow_policy_test_time) {
    if (auto test_time = request.Get(attr::kPolicyTestTime)) {
      long long seconds = 0;
      auto [end, ec] =
          std::from_chars(test_time->data(), test_time->data() + test_time->size(), seconds);
      if (ec != std::errc() || end != test_time->data() + test_time->size()) {
        done(DunnoWithWarning(Outcome::kBadTestTime, fmt::format("can't parse policy_test_time: {}",
                                                                 log::Escaped(*test_time))));
        return;
      }
      now = FromUnixSeconds(seconds);
    }
  }

  for (std::string_view name :
       {attr::kClientAddress, attr::kClientName, attr::kRecipient, attr::kSender}) {
    if (!request.Get(name)) {
      done(
          DunnoWithWarning(Outcome::kMissingAttribute, fmt::format("attribute missing: {}", name)));
      return;
    }
  }
  std::string_view address_text = request.GetOr(attr::kClientAddress);
  std::optional<policy::IpAddress> client = policy::IpAddress::Parse(address_text);
  if (!client) {
    done(DunnoWithWarning(
        Outcome::kBadClientAddress,
        fmt::format("can't parse client_address from postfix: {}", log::Escaped(address_text))));
    return;
  }

  if (std::shared_ptr<const policy::WhitelistMatcher> whitelists = whitelists_.load()) {
    if (whitelists->MatchClient(request.GetOr(attr::kClientName), *client)) {
      done(Pass(Outcome::kClientWhitelist, request));
      return;
    }
    if (whitelists->MatchRecipient(request.GetOr(attr::kRecipient))) {
      done(Pass(Outcome::kRecipientWhitelist, request));
      return;
    }
  }

  if (!list_lookup_) {
    DecideListed(request, *client, now, real_now, headers, nullptr, std::move(done));
    return;
  }
  list_lookup_(*client, [this, &request, client = *client, now, real_now, &headers,
                         done = std::move(done)](reputation::ListVerdict verdict) mutable {
    DecideListed(request, client, now, real_now, headers, &verdict, std::move(done));
  });
}

void Greylister::DecideListed(const protocol::PolicyRequest& request,
                              const policy::IpAddress& client, UnixTime now, UnixTime real_now,
                              HeaderTracker& headers, const reputation::ListVerdict* verdict,
                              DecisionCallback done) const {
  std::vector<LogLine> before;
  if (verdict != nullptr) {
    for (const std::string& failure : verdict->failures) {
      // A list that cannot be asked counts as not listing the client: DNS trouble never
      // delays mail beyond normal greylisting.
      before.push_back({log::Level::kWarning,
                        fmt::format("DNS list lookup for {} failed, treated as not listed: {}",
                                    client.ToPostgreyString(), failure),
                        /*rate_limited=*/true});
    }
    if (verdict->dnswl_listed()) {
      done(Pass(Outcome::kDnswl, request, std::move(before)));
      return;
    }
    if (options_.greylist_only_listed && !verdict->dnsbl_listed()) {
      done(Pass(Outcome::kNotListed, request, std::move(before)));
      return;
    }
  }

  RequestKeys request_keys =
      BuildRequestKeys(client, request.GetOr(attr::kClientName), request.GetOr(attr::kSender),
                       request.GetOr(attr::kRecipient), key_scheme_);
  store::CheckKeys keys;
  keys.triplet = std::move(request_keys.triplet);
  if (options_.awl_enabled) keys.client = std::move(request_keys.client);
  if (std::shared_ptr<const reputation::Greytraps> greytraps = greytraps_.load()) {
    keys.trap = std::move(request_keys.trap);
    if (auto hit = greytraps->Match(request.GetOr(attr::kRecipient))) {
      keys.trap_hit = true;
      before.push_back(
          {log::Level::kNotice,
           fmt::format("greytrap hit: {}[{}] sent to {} ({}: {})",
                       log::Escaped(request.GetOr(attr::kClientName)), client.ToPostgreyString(),
                       log::Escaped(request.GetOr(attr::kRecipient)), hit->source,
                       log::Escaped(hit->entry))});
    }
  }
  // The triplet key is only logged in JSON: no copy per request otherwise.
  std::string logged_key =
      options_.log_format == EngineOptions::LogFormat::kJson ? keys.triplet : std::string();
  store_.Check(
      keys, now,
      [this, &request, client, key = std::move(logged_key), group = std::move(request_keys.group),
       now, real_now, &headers, before = std::move(before),
       done = std::move(done)](Result<policy::Transition> result) mutable {
        done(
            Finish(request, client, key, group, now, real_now, result, headers, std::move(before)));
      });
}

Decision Greylister::Finish(const protocol::PolicyRequest& request, const policy::IpAddress& client,
                            const std::string& key, const std::string& group, UnixTime now,
                            UnixTime real_now, const Result<policy::Transition>& result,
                            HeaderTracker& headers, std::vector<LogLine> before) const {
  const bool want_log = log::Enabled(log::Level::kNotice);
  if (!result.ok()) {
    Decision decision;
    decision.logs = std::move(before);
    decision.action = options_.store_error_action;
    decision.outcome = Outcome::kStoreError;
    decision.logs.push_back({log::Level::kWarning,
                             fmt::format("store error, answering {}: {}",
                                         options_.store_error_action, result.status().message()),
                             /*rate_limited=*/true});
    return decision;
  }
  const policy::Transition& t = result.value();
  Decision decision;
  decision.logs = std::move(before);
  if (t.first_corrected) {
    decision.logs.push_back(
        {log::Level::kWarning, "correcting date for first seen in the future!"});
  }
  if (t.trapped) {
    decision.action = policy::GreylistAction(options_.greylist_action, options_.greylist_text,
                                             request.Get(attr::kEtrnDomain).has_value(), t.missing,
                                             request.GetOr(attr::kRecipient));
    decision.outcome = Outcome::kGreytrap;
    decision.trap_hit = t.trap_write.has_value();
    if (want_log) {
      decision.logs.push_back(
          ActionLog(request, "greylist", "greytrap", "missing", t.missing.count(), key, group));
    }
    return decision;
  }
  if (t.client_awl_pass) {
    decision.action = "DUNNO";
    decision.outcome = Outcome::kClientAwl;
    if (want_log) {
      decision.logs.push_back(ActionLog(request, "pass", "client AWL", {}, 0, {}, group));
    }
    return decision;
  }
  decision.client_whitelisted = t.awl_threshold_reached;
  if (t.awl_threshold_reached) {
    std::string_view name = request.GetOr(attr::kClientName);
    std::string address = client.ToPostgreyString();
    decision.logs.push_back({log::Level::kWarning, name.empty() || name == "0"
                                                       ? fmt::format("whitelisted: {}", address)
                                                       : fmt::format("whitelisted: {}[{}]",
                                                                     log::Escaped(name), address)});
  }
  if (t.greylisted()) {
    decision.action = policy::GreylistAction(options_.greylist_action, options_.greylist_text,
                                             request.Get(attr::kEtrnDomain).has_value(), t.missing,
                                             request.GetOr(attr::kRecipient));
    decision.outcome = t.first == now ? Outcome::kGreylistNew : Outcome::kGreylistEarlyRetry;
    if (want_log) {
      const bool json = options_.log_format == EngineOptions::LogFormat::kJson;
      std::string reason = t.first == now ? std::string("new")
                           : json         ? std::string("early-retry")
                                  : fmt::format("early-retry ({}s missing)", t.missing.count());
      decision.logs.push_back(
          ActionLog(request, "greylist", reason, "missing", t.missing.count(), key, group));
    }
    return decision;
  }
  if (!t.last_was_successful) {
    decision.outcome = Outcome::kPassFirst;
    decision.delayed = now - t.first;
  }
  if (!t.last_was_successful && headers.TakeNew(request.Get(attr::kInstance))) {
    Seconds delayed = now - t.first;
    decision.action =
        "PREPEND " + policy::XGreylistHeader(options_.x_greylist_header, delayed, options_.version,
                                             policy::HeaderDate(real_now), options_.hostname);
    if (want_log) {
      decision.logs.push_back(
          ActionLog(request, "pass", "triplet found", "delay", delayed.count(), key, group));
    }
    return decision;
  }
  decision.action = "DUNNO";
  if (t.last_was_successful) decision.outcome = Outcome::kPassTriplet;
  if (want_log) {
    decision.logs.push_back(ActionLog(request, "pass", "triplet found", {}, 0, key, group));
  }
  return decision;
}

}  // namespace greylight::engine
