#pragma once

#include "policy/greylist_state.h"
#include "store/redis/redis_connection.h"
#include "store/redis/redis_keys.h"
#include "store/store.h"
#include "util/status.h"

namespace greylight::store {

// The Redis side of Store::Check, without I/O: the EVALSHA of the check script
// (redis_scripts.h) and the Transition from its reply. Shared by the single-server and the
// cluster stores.

// The check script's command for `keys` at `now`. Every instant it passes is computed here
// from the named policy rules (policy::Live's max-age, Abandoned's retry window,
// ExpiresAt of each record it may write), so the script only follows Decide's control flow.
RedisCommand BuildCheckCommand(const CheckKeys& keys, UnixTime now,
                               const policy::GreylistTiming& timing, const RedisKeyLayout& layout);

// Why rerun the decision here: the script is a transcription of policy::Decide, which stays
// the one definition of greylisting. Rebuilds the Transition with policy::Decide from the
// prior records the script returned (`reply`), and compares what the script wrote with what
// Decide wants. Errors: kUnavailable for an error reply (the server's trouble), kCorruption
// for a reply of the wrong shape or a disagreement (also logged as an error).
Result<policy::Transition> TransitionFromReply(const CheckKeys& keys, UnixTime now,
                                               const policy::GreylistTiming& timing,
                                               const RedisReply& reply);

}  // namespace greylight::store
