#pragma once

// `greylight explain`: what greylightd would answer for one request, and why. It runs the
// daemon's own decision (engine::Greylister::Decide, the same steps in the same order:
// whitelists, DNS lists and SPF, keys, greytraps, the store's policy::Decide with the reply
// record) on a store that only reads, with a trace of what every step saw, and renders that
// trace.

#include <functional>
#include <string>

#include "cli/policy_config.h"
#include "engine/greylister.h"
#include "policy/whitelist_matcher.h"
#include "reputation/client_group.h"
#include "reputation/greytrap.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/status.h"

namespace greylight::tools {

// The request attributes explain takes, as Postfix would send them.
struct ExplainRequest {
  std::string client_address;
  std::string client_name;
  std::string sender;  // empty for the null sender
  std::string recipient;
  // Postfix >= 2.3 always sends etrn_domain, which makes greylightd put "4.2.0 " before a
  // greylist text that does not start with a digit.
  bool etrn_domain = true;
  std::string helo_name{};  // for SPF's null sender and "h" macro; empty if not known
};

// What greylightd loads besides its options. Each may be empty.
struct ExplainInputs {
  const policy::WhitelistMatcher* whitelists = nullptr;  // nullptr: no whitelists
  // nullptr: greytraps disabled, as in greylightd (cli::LoadGreytraps). A list without
  // entries still consults the trap list, as greylightd does.
  const reputation::Greytraps* greytraps = nullptr;
  // The public suffix list; required by --lookup-by=domain|smart (tools::LoadPslFor).
  const reputation::Psl* psl = nullptr;
  // The DNS list step (--dnswl, --dnsbl) and the SPF check (--spf-keys) as greylightd runs
  // them; empty when not configured. Their answers arrive on an event loop that `run_until`
  // runs until its argument returns true (required with `lists` or `spf`).
  engine::ListLookup lists;
  std::function<void(const std::function<bool()>& finished)> run_until;
  engine::SpfLookup spf = nullptr;
};

struct Explanation {
  std::string text;    // the reasoning, one fact per line, ending with the action line
  std::string action;  // the action greylightd would send (without "action=")
};

// Explains the decision for `request` at `now`. `real_now` is the wall-clock time for the
// X-Greylist header date, as in the daemon. Only reads `store` (Get). Returns the store's
// error if a read fails, and InvalidArgument if a domain --lookup-by has no `inputs.psl`.
Result<Explanation> Explain(const ExplainRequest& request, UnixTime now, UnixTime real_now,
                            const cli::PolicyConfig& config, const ExplainInputs& inputs,
                            store::Store& store);

}  // namespace greylight::tools
