#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/request.h"
#include "policy/reason.h"
#include "policy/whitelist_matcher.h"
#include "spf/spf_result.h"
#include "util/clock.h"

namespace greylight::engine {

// What the engine decided for one request, as facts: the answer, why, and what happened on
// the way. It holds no log text; engine/decision_log renders it in the configured format.
struct Decision {
  std::string action;  // the reply's action, never empty
  policy::Reason reason = policy::Reason::kPassed;
  // Set when the request could be read (every reason but the three "cannot be decided"
  // ones); its views point into the PolicyRequest given to Greylister::Decide.
  std::optional<Request> request;
  std::string_view unreadable_detail;  // kMissingAttribute...: the name or the value sent
  Seconds missing{0};         // greylisted: how long until a retry passes (greytrap: the trap)
  Seconds delayed{0};         // kPassFirst: how long the sender took to come back
  bool header_added = false;  // kPassFirst: the action is the X-Greylist PREPEND
  bool client_whitelisted = false;               // this request made the client auto-whitelisted
  bool first_corrected = false;                  // the stored first sighting was in the future
  std::optional<policy::WhitelistHit> trap_hit;  // this request went to a greytrap address
  std::vector<std::string> list_failures;        // DNS lists that could not be asked
  std::string store_error;                       // kStoreError: the store's message
  std::string key;  // the triplet key (kOutbound: the reply key), when keep_triplet_key
  // The client part of the keys when it is a group, for the logs (RequestKeys::group):
  // "spf:example.com" (--spf-keys), "domain:google.com" or a fallback (domain modes).
  std::string group;
  // --spf-keys: the SPF check of the envelope sender (the HELO name for <>). Unset when SPF
  // keys are off or the request was decided before the check (whitelists). The keys used
  // its domain exactly when spf::UsablePass(*spf).
  std::optional<spf::SpfResult> spf;

  bool store_failed() const { return reason == policy::Reason::kStoreError; }
};

}  // namespace greylight::engine
