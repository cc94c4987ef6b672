-- A request's authentication in one round trip: reads and slides the session, then counts
-- one hit on the session's own request counter as rate_limit.lua does. An unknown session
-- ends it with nothing counted. (The route's batch lives in another slot: the caller reads
-- it alongside.)
-- KEYS[1] session, KEYS[2] the session's request counter (same hash tag).
-- ARGV[1] session ttl in ms, ARGV[2] rate window in ms ('0': count nothing).
-- Returns {} for an unknown session, else {session JSON, count, ms left in the window}.
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
return {session, tostring(n), tostring(ttl)}
