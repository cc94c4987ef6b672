-- A request's authentication in one round trip: reads and slides the session, then counts
-- one hit as rate_limit.lua does and reads the batch as get_batch does. An unknown
-- session ends it with nothing counted.
-- KEYS[1] session, KEYS[2] rate counter, KEYS[3] batch hash (unused keys repeat KEYS[1]).
-- ARGV[1] session ttl in ms, ARGV[2] rate window in ms ('0': count nothing),
-- ARGV[3] '1' to read the batch.
-- Returns {} for an unknown session, else {session JSON, count, ms left in the window,
--   then batch fields ('' when absent) if asked}.
local session = redis.call('GET', KEYS[1])
if not session then return {} end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local n, ttl = 0, 0
if ARGV[2] ~= '0' then
  n = redis.call('INCR', KEYS[2])
  ttl = redis.call('PTTL', KEYS[2])
  if n == 1 or ttl < 0 then
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
end
local out = {session, tostring(n), tostring(ttl)}
if ARGV[3] == '1' then
  local f = redis.call('HMGET', KEYS[3], 'meta', 'state', 'total', 'done', 'failed')
  for i = 1, 5 do out[3 + i] = f[i] or '' end
end
return out
