#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/request_keys.h"
#include "policy/greylist_state.h"
#include "policy/reply_text.h"
#include "policy/triplet_key.h"
#include "policy/whitelist_matcher.h"
#include "protocol/policy_request.h"
#include "reputation/client_group.h"
#include "reputation/greytrap.h"
#include "reputation/list_verdict.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"

namespace greylight::engine {

struct EngineOptions {
  policy::KeyOptions keys;
  bool awl_enabled = true;  // mirrors GreylistTiming::awl_threshold > 0
  std::string greylist_action{policy::kDefaultGreylistAction};
  std::string greylist_text{policy::kDefaultGreylistText};
  std::string x_greylist_header{policy::kDefaultXGreylistHeader};
  std::string hostname;
  std::string version;
  // Answer given when the store fails: fail open by default, so a backend fault never
  // makes Postfix reject mail.
  std::string store_error_action = "DUNNO";
  // Honour the policy_test_time attribute (postgrey's replay hook). Off in production:
  // a client must not be able to move the server's clock.
  bool allow_policy_test_time = false;
  // Per-decision log lines: postgrey's "action=..., reason=..." text, or one JSON object
  // with the same fields plus the triplet key and the seconds delayed or missing.
  enum class LogFormat { kPostgrey, kJson };
  LogFormat log_format = LogFormat::kPostgrey;
  // How clients are grouped in keys (--lookup-by): subnet (postgrey's default), host, or
  // by the registrable domain of a verified name (domain, smart). Domain modes need a Psl.
  reputation::LookupBy lookup_by = reputation::LookupBy::kSubnet;
  // --greylist-only-listed: clients no --dnsbl lists are passed without greylisting.
  bool greylist_only_listed = false;
};

// Asks the DNS lists about a client; calls the callback once, later (never inline).
using ListLookup =
    std::function<void(const policy::IpAddress& client, reputation::ListCallback done)>;

struct LogLine {
  log::Level level;
  std::string text;
  // Repeats once per request while a dependency is down (store, DNS): the server lets one
  // such line through per interval.
  bool rate_limited = false;
};

// Why a request got its answer; the labels of the requests metric.
enum class Outcome {
  kGreylistNew,
  kGreylistEarlyRetry,
  kPassFirst,  // the triplet's first accepted delivery
  kPassTriplet,
  kClientWhitelist,
  kRecipientWhitelist,
  kClientAwl,
  kDnswl,      // listed by a --dnswl zone
  kNotListed,  // --greylist-only-listed and no --dnsbl zone lists the client
  kGreytrap,   // the client is on the greytrap list (this request may have put it there)
  kMissingAttribute,
  kBadClientAddress,
  kBadTestTime,
  kStoreError,
};
inline constexpr int kOutcomeCount = static_cast<int>(Outcome::kStoreError) + 1;
// postgrey's action and reason words for an outcome ("greylist"/"new", "pass"/"client AWL";
// requests answered without a decision have action "dunno").
std::string_view OutcomeAction(Outcome outcome);
std::string_view OutcomeReason(Outcome outcome);

// What to answer and what to log for one request.
struct Decision {
  std::string action;         // never empty
  std::vector<LogLine> logs;  // in the order postgrey logs them
  Outcome outcome = Outcome::kPassTriplet;
  Seconds delayed{0};               // kPassFirst: how long the sender took to come back
  bool client_whitelisted = false;  // this request made the client auto-whitelisted
  bool trap_hit = false;            // this request went to a greytrap address
  bool store_failed() const { return outcome == Outcome::kStoreError; }
};

// Per-connection memory of which deliveries (Postfix `instance`) already got an
// X-Greylist header, so a message with several recipients gets one header. postgrey keeps
// one global list of 10; per connection it stays exact under parallel load.
class HeaderTracker {
 public:
  // True (and remembered) if `instance` has not had a header; an absent instance is new.
  bool TakeNew(std::optional<std::string_view> instance);

 private:
  static constexpr size_t kRemembered = 10;
  std::array<std::string, kRemembered> recent_{};
  size_t next_ = 0;
  size_t size_ = 0;
};

using DecisionCallback = std::function<void(Decision)>;

// The greylisting decision (postgrey section 4.2): required attributes, whitelists, the
// client auto-whitelist and the triplet, over a Store. It reads no clock and does no I/O
// of its own: `now` comes from the caller, logs are returned in the Decision, and state is
// reached only through the Store interface.
//
// Thread-safety: Decide may run concurrently on different connections; SetWhitelists may
// be called at any time (the next decision sees the new lists).
class Greylister {
 public:
  // `store` (and `psl`, required for the domain lookup modes) must outlive the Greylister.
  Greylister(EngineOptions options, store::Store& store, const reputation::Psl* psl = nullptr);
  // Enables the DNS list step (--dnswl, --dnsbl). Call before the first Decide.
  void SetListLookup(ListLookup lookup) { list_lookup_ = std::move(lookup); }

  void SetWhitelists(std::shared_ptr<const policy::WhitelistMatcher> whitelists);
  // Enables greytraps (--greytrap-recipients); nullptr disables them. A list without
  // entries still keeps the clients already on the trap list trapped (a trap file emptied
  // by mistake must not release them all). May be called at any time, like SetWhitelists.
  void SetGreytraps(std::shared_ptr<const reputation::Greytraps> greytraps);

  // Decides `request` received at real time `now`. Calls `done` exactly once, before
  // returning or later from a store thread. `headers` must outlive that call.
  void Decide(const protocol::PolicyRequest& request, UnixTime now, HeaderTracker& headers,
              DecisionCallback done) const;

  const EngineOptions& options() const { return options_; }

 private:
  // The notice-level decision line in the configured format. `number_name`/`number` add
  // postgrey's "delay=N" (or, in JSON, the seconds missing); `key` goes to JSON only.
  LogLine ActionLog(const protocol::PolicyRequest& request, std::string_view action,
                    std::string_view reason, std::string_view number_name = {},
                    long long number = 0, std::string_view key = {},
                    std::string_view group = {}) const;
  Decision Pass(Outcome outcome, const protocol::PolicyRequest& request,
                std::vector<LogLine> before = {}) const;
  // The part of Decide after the whitelists: DNS list verdict (if any), keys, store.
  void DecideListed(const protocol::PolicyRequest& request, const policy::IpAddress& client,
                    UnixTime now, UnixTime real_now, HeaderTracker& headers,
                    const reputation::ListVerdict* verdict, DecisionCallback done) const;
  // `key` is the triplet key (empty unless logging JSON) and `group` the domain group, both
  // for the logs.
  Decision Finish(const protocol::PolicyRequest& request, const policy::IpAddress& client,
                  const std::string& key, const std::string& group, UnixTime now, UnixTime real_now,
                  const Result<policy::Transition>& result, HeaderTracker& headers,
                  std::vector<LogLine> before) const;

  const EngineOptions options_;
  store::Store& store_;
  const KeyScheme key_scheme_;
  ListLookup list_lookup_;
  std::atomic<std::shared_ptr<const policy::WhitelistMatcher>> whitelists_;
  std::atomic<std::shared_ptr<const reputation::Greytraps>> greytraps_;
};

}  // namespace greylight::engine
