#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace greylight::store {

// The server-side Lua scripts of the Redis stores. A script is addressed by the SHA-1 of
// its text (EVALSHA); the pipeline loads them on every new connection and falls back to
// EVAL when a server answers NOSCRIPT.
struct RedisScript {
  std::string_view text;
  std::string sha1;  // lowercase hex, as SCRIPT LOAD returns it
};

// The greylisting check, one atomic read-decide-write (arguments built by redis_check.cc):
//   KEYS[1] triplet key, then the client key if ARGV[12] is "1", then the trap-list key if
//     ARGV[13] is not "0", then the reply key if ARGV[15] is "1"
//   ARGV    now, delay, live_since, abandoned_before, awl_threshold, awl_count_before,
//     trap_until_on_hit, pending_expires_at, passed_expires_at, client_expires_at,
//     max_field (Unix seconds or counts), client key present ("1"/"0"), trap ("0" none,
//     "1" check, "2" trap hit), refreshed_after (a triplet last seen after it is not written
//     when only its last sighting would move: policy::Decide's rule), reply ("0" none or absent,
//     "1" read the reply key, "2" a live reply record read by the caller on another cluster slot)
// Returns {prior triplet value, prior client value, written triplet value, written client
// value, prior trap value, written trap value, prior reply value}, each a bulk string or
// nil. The prior values are returned raw (possibly malformed or expired) so that the caller
// can rerun policy::Decide on exactly what the script saw.
const RedisScript& CheckScript();

// The greytrap part of the check alone (a cluster whose trap entry is on another slot):
//   KEYS[1] the trap-list key
//   ARGV    now, trap_until_on_hit, max_field, hit ("1"/"0")
// Returns {prior trap value, written trap value}, each a bulk string or nil.
const RedisScript& TrapScript();

// One outbound message for a reply key (Store::RecordReply), atomic:
//   KEYS[1] the reply key
//   ARGV    now, live_since, expires_at (of the record written), max_field
// Returns {prior value, written value}: the prior raw, so the caller can check the written
// one against policy::RecordOutbound.
const RedisScript& RecordReplyScript();

// Commits a check decided in C++ on the values one MGET read, if none of them changed since
// (optimistic concurrency: the check is then serialisable as having happened here):
//   KEYS[i] the keys read
//   ARGV    four per key: "1" if it held a string / "0", the value read, the value to write
//           ("" for none), the written value's TTL in seconds
// Returns 1 if committed, 0 if a key changed since the read (nothing written).
const RedisScript& CommitIfUnchangedScript();

// Compare-and-delete for expiry: KEYS[1], ARGV[1] the value seen. Deletes the key only if
// it still holds that value, so a record updated since it was read is kept. Returns 1 if
// deleted, else 0.
const RedisScript& DeleteIfUnchangedScript();

// Every script above: what a pipeline loads on each new connection.
std::vector<const RedisScript*> AllScripts();

}  // namespace greylight::store
