#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "engine/decision.h"
#include "engine/decision_trace.h"
#include "engine/header_tracker.h"
#include "engine/request_keys.h"
#include "policy/greylist_state.h"
#include "policy/reply_text.h"
#include "policy/triplet_key.h"
#include "policy/whitelist_matcher.h"
#include "protocol/policy_request.h"
#include "reputation/client_group.h"
#include "reputation/greytrap.h"
#include "reputation/list_verdict.h"
#include "spf/spf_check.h"
#include "spf/spf_result.h"
#include "store/store.h"
#include "util/clock.h"

namespace greylight::engine {

struct EngineOptions {
  policy::KeyOptions keys;
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
  // Keep the triplet key (an outbound request: the reply key) in each Decision (the JSON log
  // names it); off, it costs nothing.
  bool keep_triplet_key = false;
  // How clients are grouped in keys (--lookup-by): subnet (postgrey's default), host, or
  // by the registrable domain of a verified name (domain, smart). Domain modes need a Psl.
  reputation::LookupBy lookup_by = reputation::LookupBy::kSubnet;
  // --greylist-only-listed: clients no --dnsbl lists are passed without greylisting.
  bool greylist_only_listed = false;
  // --spf-keys: a client that passes SPF narrowly for the envelope sender's domain is keyed
  // by that domain ("spf:example.com"). The check runs only once SetSpfLookup is called.
  bool spf_keys = false;
};

// Asks the DNS lists about a client; calls the callback once, later (never inline).
using ListLookup =
    std::function<void(const policy::IpAddress& client, reputation::ListCallback done)>;

// Checks SPF (RFC 7208) for a request; calls the callback once, later (never inline). Any
// trouble is a result too (temperror), never a missing call.
using SpfLookup =
    std::function<void(spf::SpfRequest request, std::function<void(spf::SpfResult)> done)>;

// The decision is the callee's: it may move from it. By reference, because a Decision is
// large and each move of it showed in the pass path's profile.
using DecisionCallback = std::function<void(Decision&&)>;

// The greylisting decision (postgrey section 4.2), as a sequence of steps: read the
// request, the whitelists, the DNS lists and the SPF check (asked at once), the keys and
// the greytrap list, then the store's read-decide-write (policy::Decide: greytrap list,
// auto-whitelist, reply record, triplet). It reads no clock and does no I/O of its own: the time
// comes from the caller, state is reached only through the Store interface, and the Decision is
// facts that the caller renders (engine/decision_log).
//
// Thread-safety: Decide may run concurrently on different connections; SetWhitelists and
// SetGreytraps may be called at any time (the next decision sees the new lists).
class Greylister {
 public:
  // `store` (and `psl`, required for the domain lookup modes) must outlive the Greylister.
  // `timing` says whether the client auto-whitelist is on (awl_threshold > 0).
  Greylister(EngineOptions options, const policy::GreylistTiming& timing, store::Store& store,
             const reputation::Psl* psl = nullptr);
  // Enables the DNS list step (--dnswl, --dnsbl). Call before the first Decide.
  void SetListLookup(ListLookup lookup) { list_lookup_ = std::move(lookup); }
  // Enables the SPF step (--spf-keys): the envelope sender's SPF result, asked beside the
  // DNS lists, and a usable pass (spf::UsablePass) keys the client by its domain. Anything
  // else (fail, temperror, a broad pass...) leaves the --lookup-by keys: SPF can only save a
  // delay, never cause one. Call before the first Decide.
  void SetSpfLookup(SpfLookup lookup) { spf_lookup_ = std::move(lookup); }

  void SetWhitelists(std::shared_ptr<const policy::WhitelistMatcher> whitelists);
  // Enables greytraps (--greytrap-recipients); nullptr disables them. A list without
  // entries still keeps the clients already on the trap list trapped (a trap file emptied
  // by mistake must not release them all). May be called at any time, like SetWhitelists.
  void SetGreytraps(std::shared_ptr<const reputation::Greytraps> greytraps);

  // Decides `request`, received at real time `real_now`. Calls `done` exactly once, before
  // returning or later from a store or DNS thread. `request`, `headers` and `trace` (if
  // given: every step records what it saw there) must outlive that call.
  void Decide(const protocol::PolicyRequest& request, UnixTime real_now, HeaderTracker& headers,
              DecisionCallback done, DecisionTrace* trace = nullptr) const;

  // Answers a request of an outbound listener (a local user's message to a remote address,
  // from Postfix's submission service): records the pair (recipient, sender) for reply
  // tracking (Store::RecordReply of policy::ReplyKey(recipient, sender)), so the remote
  // address' replies to that user pass without greylisting for max-age. The answer is always
  // DUNNO (kOutbound; kNotRecorded for the null sender or no recipient; the three
  // unreadable reasons; kStoreError, whose action is DUNNO too: an outbound message is
  // never deferred for reply tracking's sake). Calls `done` exactly once, like Decide.
  // `request` must outlive that call.
  void RecordOutbound(const protocol::PolicyRequest& request, UnixTime real_now,
                      DecisionCallback done) const;

  const EngineOptions& options() const { return options_; }

 private:
  struct Lookups;
  struct PendingCheck;
  // The calling thread's spare PendingCheck (or a new one), and back: a thread deciding one
  // request after another reuses one, buffers and all.
  static std::unique_ptr<PendingCheck>& SpareCheck();
  static std::unique_ptr<PendingCheck> TakeSpareCheck();
  static void KeepSpareCheck(std::unique_ptr<PendingCheck> check);
  // The steps after the whitelists: the DNS list verdict and SPF result (each if asked),
  // keys, greytraps, store.
  void DecideListed(Decision decision, const reputation::ListVerdict* verdict,
                    const spf::SpfResult* spf, HeaderTracker& headers, DecisionCallback done,
                    DecisionTrace* trace) const;
  // Completes `decision` as the answer for the store's transition.
  void Finish(Decision& decision, const Result<policy::Transition>& result, HeaderTracker& headers,
              DecisionTrace* trace) const;
  std::string GreylistAction(const Request& request, Seconds missing) const;

  const EngineOptions options_;
  const bool auto_whitelist_;
  store::Store& store_;
  const KeyScheme key_scheme_;
  ListLookup list_lookup_;
  SpfLookup spf_lookup_;
  std::atomic<std::shared_ptr<const policy::WhitelistMatcher>> whitelists_;
  std::atomic<std::shared_ptr<const reputation::Greytraps>> greytraps_;
};

}  // namespace greylight::engine
