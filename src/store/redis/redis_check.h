#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/greylist_state.h"
#include "store/redis/redis_connection.h"
#include "store/redis/redis_keys.h"
#include "store/store.h"
#include "util/status.h"

namespace greylight::store {

// The Redis side of Store::Check, without I/O: the EVALSHA of the check script
// (redis_scripts.h) and the Transition from its reply. Shared by the single-server and the
// cluster stores.

// A stored value as read: nullopt when the key was absent.
using RawValue = std::optional<std::string>;

// The check script's command for `keys` at `now`. Every instant it passes is computed here
// from the named policy rules (policy::Live's max-age, Abandoned's retry window,
// ExpiresAt of each record it may write), so the script only follows Decide's control flow.
// `reply_elsewhere`: the value of keys.reply read by the caller on its own cluster slot
// (its liveness is passed to the script); nullopt: the script reads keys.reply itself.
RedisCommand BuildCheckCommand(const CheckKeys& keys, UnixTime now,
                               const policy::GreylistTiming& timing, const RedisKeyLayout& layout,
                               const std::optional<RawValue>& reply_elsewhere = std::nullopt);

// Why rerun the decision here: the script is a transcription of policy::Decide, which stays
// the one definition of greylisting. Rebuilds the Transition with policy::Decide from the
// prior records the script returned (`reply`; the reply record from `reply_elsewhere` when
// the caller read it), and compares what the script wrote with what Decide wants. Errors:
// kUnavailable for an error reply (the server's trouble), kCorruption for a reply of the
// wrong shape or a disagreement (also logged as an error).
Result<policy::Transition> TransitionFromReply(
    const CheckKeys& keys, UnixTime now, const policy::GreylistTiming& timing,
    const RedisReply& reply, const std::optional<RawValue>& reply_elsewhere = std::nullopt);

// The reply-record script's command (Store::RecordReply) for reply key `key` at `now`:
// liveness and the expiry instant come from policy::Live and policy::ExpiresAt.
RedisCommand BuildRecordReplyCommand(std::string_view key, UnixTime now,
                                     const policy::GreylistTiming& timing,
                                     const RedisKeyLayout& layout);

// The record the reply-record script wrote, checked against policy::RecordOutbound of the
// prior value it returned. Errors as TransitionFromReply's.
Result<policy::ReplyRecord> ReplyRecordFromReply(std::string_view key, UnixTime now,
                                                 const policy::GreylistTiming& timing,
                                                 const RedisReply& reply);

}  // namespace greylight::store
