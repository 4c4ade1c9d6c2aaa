#pragma once

#include <optional>

#include "engine/request_keys.h"
#include "policy/greylist_state.h"
#include "policy/whitelist_matcher.h"
#include "reputation/list_verdict.h"
#include "spf/spf_result.h"

namespace greylight::engine {

// What each step of the decision saw, in the engine's order, for `greylight explain`: the
// tool runs the daemon's own Greylister::Decide with a trace and renders it, so explain
// cannot tell another story than greylightd. The daemon passes no trace.
struct DecisionTrace {
  bool whitelists_loaded = false;
  std::optional<policy::WhitelistHit> client_whitelist;  // the entry that matched, if any
  bool recipient_whitelist_checked = false;
  std::optional<policy::WhitelistHit> recipient_whitelist;
  std::optional<reputation::ListVerdict> lists;  // set when DNS lists are configured
  std::optional<spf::SpfResult> spf;             // set when SPF keys are configured
  std::optional<RequestKeys> keys;               // set once the store is consulted
  bool auto_whitelist_enabled = false;
  bool greytraps_enabled = false;
  std::optional<policy::WhitelistHit> greytrap;  // the trap entry the recipient matched
  std::optional<policy::Transition> transition;  // the store's transition, if it answered
};

}  // namespace greylight::engine
