-- Counts hits in a fixed window; the window starts with its first hit. A counter left
-- without expiry (ttl < 0) gets one, so no counter lives forever.
-- KEYS[1] counter.
-- ARGV[1] window in ms, ARGV[2] hits (a request that costs as much as that many).
-- Returns {count, ms left in the window}.
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if n == tonumber(ARGV[2]) or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
