#include "store/redis/redis_scripts.h"

#include "util/sha1.h"

namespace greylight::store {
namespace {

// The script is policy::Decide() and policy::Live() (src/policy/greylist_state.cc)
// transcribed statement by statement, greytraps included, plus the TTLs. It is not a second source
// of truth: the store reruns policy::Decide in C++ on the prior values the script returns and
// refuses any answer where the two disagree, and the store conformance suite compares the
// whole store with the in-memory reference on random traffic.
//
// decode() accepts exactly what policy::DecodeTriplet / DecodeClient accept
// (std::from_chars fields: optional '-' that only "-0" survives, leading zeros allowed,
// a third ",..." field for triplets only), minus fields above 2^53-1, see
// kMaxExactLuaInteger.
//
// TTLs (seconds after this write, whose last-seen time is `now`) let Redis do the expiry
// of policy::Expired(): a triplet that passed is dead max_age after its last update; one
// still pending is dead once retry_window has passed since its last update (policy::Decide
// would start it over, exactly as if it were absent) or max_age, whichever comes first;
// a client entry max_age after its last update; a trap entry when it stops trapping. One
// second of margin keeps a record alive
// through the whole second in which the policy still reads it.
constexpr std::string_view kCheckScript = R"lua(
local now = tonumber(ARGV[1])
local delay = tonumber(ARGV[2])
local max_age = tonumber(ARGV[3])
local retry_window = tonumber(ARGV[4])
local awl_threshold = tonumber(ARGV[5])
local awl_interval = tonumber(ARGV[6])
local trap_ttl = tonumber(ARGV[7])
local has_client = ARGV[8] == '1'
local trap_mode = ARGV[9]
local max_exact = 9007199254740991
local has_trap = trap_mode ~= '0'
local trap_key = KEYS[#KEYS]

local function field(text)
  if string.sub(text, 1, 1) == '-' then
    text = string.sub(text, 2)
    if string.find(text, '[1-9]') then return nil end
  end
  local digits = string.match(text, '^0*(%d*)$')
  if #digits > 16 then return nil end
  local n = tonumber(digits) or 0
  if n > max_exact then return nil end
  return n
end

local function decode(value, allow_third_field)
  if not value then return nil end
  local a, b, rest = string.match(value, '^(%-?%d+),(%-?%d+)(.*)$')
  if not a then return nil end
  if rest ~= '' and not (allow_third_field and string.sub(rest, 1, 1) == ',') then
    return nil
  end
  a = field(a)
  b = field(b)
  if not a or not b then return nil end
  return a, b
end

local function read(key)
  local value = redis.pcall('GET', key)
  if type(value) ~= 'string' then return false end
  return value
end

local raw_triplet = read(KEYS[1])
local raw_client = false
if has_client then raw_client = read(KEYS[2]) end

local t_first, t_last = decode(raw_triplet, true)
if t_first and now - t_last > max_age then t_first, t_last = nil, nil end
local c_count, c_last
if has_client then
  c_count, c_last = decode(raw_client, false)
  if c_count and now - c_last > max_age then c_count, c_last = nil, nil end
end

local raw_trap = false
local trap_until = nil
if has_trap then
  raw_trap = read(trap_key)
  local u = decode(raw_trap, false)
  if u and now < u then trap_until = u end
end

local written_trap = false
if trap_mode == '2' then
  local until_time = now + trap_ttl
  if trap_until and trap_until > until_time then until_time = trap_until end
  trap_until = until_time
  written_trap = string.format('%d,%d', until_time, now)
  redis.call('SET', trap_key, written_trap, 'EX', until_time - now + 1)
end
if trap_until then
  return {raw_triplet, raw_client, false, false, raw_trap, written_trap}
end

local awl_enabled = awl_threshold > 0
local new_triplet, new_client = nil, nil
if awl_enabled and c_count and c_count >= awl_threshold then
  if now >= c_last + awl_interval or c_last > now then
    new_client = {c_count + 1, now}
  end
else
  local first = now
  local last_was_successful = false
  if t_first then
    first = t_first
    if t_last - t_first >= delay then
      last_was_successful = true
    elseif now - t_first > retry_window then
      first = now
    end
    if first > now then first = now end
  end
  new_triplet = {first, now}
  local missing = delay - (now - first)
  if awl_enabled and missing <= 0 and not last_was_successful and
      (not c_count or now >= c_last + awl_interval) then
    new_client = {(c_count or 0) + 1, now}
  end
end

local written_triplet, written_client = false, false
if new_triplet then
  written_triplet = string.format('%d,%d', new_triplet[1], new_triplet[2])
  local ttl = math.min(max_age, retry_window) + 1
  if new_triplet[2] - new_triplet[1] >= delay then ttl = max_age + 1 end
  redis.call('SET', KEYS[1], written_triplet, 'EX', ttl)
end
if new_client and has_client then
  written_client = string.format('%d,%d', new_client[1], new_client[2])
  redis.call('SET', KEYS[2], written_client, 'EX', max_age + 1)
end
return {raw_triplet, raw_client, written_triplet, written_client, raw_trap, false}
)lua";

constexpr std::string_view kDeleteIfUnchangedScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua";

}  // namespace

const RedisScript& CheckScript() {
  static const RedisScript script{kCheckScript, Sha1Hex(kCheckScript)};
  return script;
}

const RedisScript& DeleteIfUnchangedScript() {
  static const RedisScript script{kDeleteIfUnchangedScript, Sha1Hex(kDeleteIfUnchangedScript)};
  return script;
}

}  // namespace greylight::store
