#pragma once

#include <string>
#include <string_view>

namespace greylight::store {

// The server-side Lua scripts of the Redis store. A script is addressed by the SHA-1 of its
// text (EVALSHA); the store loads both on every new connection and falls back to EVAL when
// a server answers NOSCRIPT.
struct RedisScript {
  std::string_view text;
  std::string sha1;  // lowercase hex, as SCRIPT LOAD returns it
};

// The greylisting check, one atomic read-decide-write:
//   KEYS[1] triplet key, then the client key if ARGV[8] is "1", then the trap-list key if
//     ARGV[9] is not "0"
//   ARGV    now, delay, max_age, retry_window, awl_threshold, awl_count_interval, trap_ttl
//     (seconds), client key present ("1"/"0"), trap ("0" none, "1" check, "2" trap hit)
// Returns {prior triplet value, prior client value, written triplet value, written client
// value, prior trap value, written trap value}, each a bulk string or nil. The prior values
// are returned raw (possibly malformed or expired) so that the caller can rerun
// policy::Decide on exactly what the script saw.
const RedisScript& CheckScript();

// Compare-and-delete for expiry: KEYS[1], ARGV[1] the value seen. Deletes the key only if
// it still holds that value, so a record updated since it was read is kept. Returns 1 if
// deleted, else 0.
const RedisScript& DeleteIfUnchangedScript();

// The largest integer both sides of the check represent exactly: Redis' Lua numbers are
// doubles. Stored fields above it are treated as malformed by the script, and by the C++
// side when it reruns the decision, so both agree (policy::DecodeTriplet alone would accept
// up to 2^63-1, a time 292 billion years away).
inline constexpr long long kMaxExactLuaInteger = (1LL << 53) - 1;

}  // namespace greylight::store
