#include "store/redis/redis_scripts.h"

#include "util/sha1.h"

namespace greylight::store {
namespace {

// The script is policy::Decide() (src/policy/greylist_state.cc) transcribed statement by
// statement, greytraps and reply records included. It is not a second source of truth: the store
// reruns policy::Decide in C++ on the prior values the script returns and refuses any answer where
// the two disagree (redis_check.cc), and the store conformance suite compares the whole
// store with the in-memory reference on random traffic.
//
// Every instant and bound that a named policy rule defines comes in as an argument computed
// in C++ from that rule (redis_check.cc): liveness (policy::Live) as `live_since`,
// policy::Abandoned as `abandoned_before`, the expiry instants (policy::ExpiresAt) of the
// records it may write, the auto-whitelist counting interval and the codec's largest field
// (policy::kMaxRecordField). What remains here is the decision's own control flow,
// policy::Passed (last - first >= delay) among it, and the codec's grammar.
//
// decode() accepts exactly what policy::DecodeTriplet / DecodeClient / DecodeTrap accept
// (std::from_chars fields: optional '-' that only "-0" survives, leading zeros allowed,
// a third ",..." field for triplets only, no field above max_field).
//
// The codec part (field, decode, read, write) is shared with the trap script.
constexpr std::string_view kCodecLua = R"lua(
local function field(text, max_field)
  if string.sub(text, 1, 1) == '-' then
    text = string.sub(text, 2)
    if string.find(text, '[1-9]') then return nil end
  end
  local digits = string.match(text, '^0*(%d*)$')
  if #digits > 16 then return nil end
  local n = tonumber(digits) or 0
  if n > max_field then return nil end
  return n
end

local function decode(value, allow_third_field, max_field)
  if not value then return nil end
  local a, b, rest = string.match(value, '^(%-?%d+),(%-?%d+)(.*)$')
  if not a then return nil end
  if rest ~= '' and not (allow_third_field and string.sub(rest, 1, 1) == ',') then
    return nil
  end
  a = field(a, max_field)
  b = field(b, max_field)
  if not a or not b then return nil end
  return a, b
end

local function read(key)
  local value = redis.pcall('GET', key)
  if type(value) ~= 'string' then return false end
  return value
end

local function write(key, a, b, now, expires_at)
  local value = string.format('%d,%d', a, b)
  redis.call('SET', key, value, 'EX', expires_at - now)
  return value
end
)lua";

constexpr std::string_view kCheckLua = R"lua(
local now = tonumber(ARGV[1])
local delay = tonumber(ARGV[2])
local live_since = tonumber(ARGV[3])
local abandoned_before = tonumber(ARGV[4])
local awl_threshold = tonumber(ARGV[5])
local awl_count_before = tonumber(ARGV[6])
local trap_until_on_hit = tonumber(ARGV[7])
local pending_expires_at = tonumber(ARGV[8])
local passed_expires_at = tonumber(ARGV[9])
local client_expires_at = tonumber(ARGV[10])
local max_field = tonumber(ARGV[11])
local has_client = ARGV[12] == '1'
local trap_mode = ARGV[13]
local refreshed_after = tonumber(ARGV[14])
local reply_mode = ARGV[15]
local next_key = 2
if has_client then next_key = 3 end
local trap_key, reply_key = nil, nil
if trap_mode ~= '0' then
  trap_key = KEYS[next_key]
  next_key = next_key + 1
end
if reply_mode == '1' then reply_key = KEYS[next_key] end

local raw_triplet = read(KEYS[1])
local t_first, t_last = decode(raw_triplet, true, max_field)
if t_first and t_last < live_since then t_first, t_last = nil, nil end
local raw_client, c_count, c_last = false, nil, nil
if has_client then
  raw_client = read(KEYS[2])
  c_count, c_last = decode(raw_client, false, max_field)
  if c_count and c_last < live_since then c_count, c_last = nil, nil end
end

local raw_trap, trap_until = false, nil
if trap_mode ~= '0' then
  raw_trap = read(trap_key)
  local u = decode(raw_trap, false, max_field)
  if u and now < u then trap_until = u end
end
local raw_reply, reply_live = false, reply_mode == '2'
if reply_mode == '1' then
  raw_reply = read(reply_key)
  local r_count, r_last = decode(raw_reply, false, max_field)
  if r_count and r_last >= live_since then reply_live = true end
end

if trap_mode == '2' then
  local until_time = trap_until_on_hit
  if trap_until and trap_until > until_time then until_time = trap_until end
  local written_trap = write(trap_key, until_time, now, now, until_time)
  return {raw_triplet, raw_client, false, false, raw_trap, written_trap, raw_reply}
end
if trap_until then
  return {raw_triplet, raw_client, false, false, raw_trap, false, raw_reply}
end

local awl_enabled = awl_threshold > 0
local written_triplet, written_client = false, false
if awl_enabled and c_count and c_count >= awl_threshold then
  if c_last <= awl_count_before or c_last > now then
    written_client = write(KEYS[2], c_count + 1, now, now, client_expires_at)
  end
  return {raw_triplet, raw_client, false, written_client, raw_trap, false, raw_reply}
end
if reply_live then
  return {raw_triplet, raw_client, false, false, raw_trap, false, raw_reply}
end

local first = now
local last_was_successful = false
if t_first then
  first = t_first
  if t_last - t_first >= delay then
    last_was_successful = true
  elseif t_first < abandoned_before then
    first = now
  end
  if first > now then first = now end
end
local passed = now - first >= delay
local only_last_moves = t_first and first == t_first and t_last <= now and
    t_last > refreshed_after and passed == last_was_successful
if not only_last_moves then
  written_triplet = write(KEYS[1], first, now, now, passed and passed_expires_at or pending_expires_at)
end
if has_client and awl_enabled and passed and not last_was_successful and
    (not c_count or c_last <= awl_count_before) then
  written_client = write(KEYS[2], (c_count or 0) + 1, now, now, client_expires_at)
end
return {raw_triplet, raw_client, written_triplet, written_client, raw_trap, false, raw_reply}
)lua";

// The greytrap part of the check alone, for a trap entry on another cluster slot than the
// triplet: the same statements as the check script's trap part.
constexpr std::string_view kTrapLua = R"lua(
local now = tonumber(ARGV[1])
local trap_until_on_hit = tonumber(ARGV[2])
local max_field = tonumber(ARGV[3])
local raw_trap = read(KEYS[1])
local trap_until = nil
local u = decode(raw_trap, false, max_field)
if u and now < u then trap_until = u end
if ARGV[4] == '1' then
  local until_time = trap_until_on_hit
  if trap_until and trap_until > until_time then until_time = trap_until end
  return {raw_trap, write(KEYS[1], until_time, now, now, until_time)}
end
return {raw_trap, false}
)lua";

// One outbound message for a reply key: policy::RecordOutbound over the live record (one
// more message, the last one now), with the TTL of the record it writes.
constexpr std::string_view kRecordReplyLua = R"lua(
local now = tonumber(ARGV[1])
local live_since = tonumber(ARGV[2])
local expires_at = tonumber(ARGV[3])
local max_field = tonumber(ARGV[4])
local raw = read(KEYS[1])
local count, last = decode(raw, false, max_field)
if count and last < live_since then count = nil end
local n = 1
if count then
  if count >= max_field then n = max_field else n = count + 1 end
end
return {raw, write(KEYS[1], n, now, now, expires_at)}
)lua";

// A key that holds no string (absent, or of another type: MGET reads nil) compares as absent.
constexpr std::string_view kCommitIfUnchangedScript = R"lua(
for i = 1, #KEYS do
  local held = redis.pcall('GET', KEYS[i])
  if type(held) ~= 'string' then held = false end
  local seen = ARGV[4 * i - 3] == '1' and ARGV[4 * i - 2]
  if held ~= seen then return 0 end
end
for i = 1, #KEYS do
  local value = ARGV[4 * i - 1]
  if value ~= '' then redis.call('SET', KEYS[i], value, 'EX', ARGV[4 * i]) end
end
return 1
)lua";

constexpr std::string_view kDeleteIfUnchangedScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua";

}  // namespace

const RedisScript& CheckScript() {
  static const std::string text = std::string(kCodecLua) + std::string(kCheckLua);
  static const RedisScript script{text, Sha1Hex(text)};
  return script;
}

const RedisScript& TrapScript() {
  static const std::string text = std::string(kCodecLua) + std::string(kTrapLua);
  static const RedisScript script{text, Sha1Hex(text)};
  return script;
}

const RedisScript& RecordReplyScript() {
  static const std::string text = std::string(kCodecLua) + std::string(kRecordReplyLua);
  static const RedisScript script{text, Sha1Hex(text)};
  return script;
}

const RedisScript& CommitIfUnchangedScript() {
  static const RedisScript script{kCommitIfUnchangedScript, Sha1Hex(kCommitIfUnchangedScript)};
  return script;
}

const RedisScript& DeleteIfUnchangedScript() {
  static const RedisScript script{kDeleteIfUnchangedScript, Sha1Hex(kDeleteIfUnchangedScript)};
  return script;
}

std::vector<const RedisScript*> AllScripts() {
  return {&CheckScript(), &TrapScript(), &RecordReplyScript(), &CommitIfUnchangedScript(),
          &DeleteIfUnchangedScript()};
}

}  // namespace greylight::store
