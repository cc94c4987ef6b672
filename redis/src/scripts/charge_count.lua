-- Charges bytes to one payer's count (a session's or a client address's bytes kept), unless
-- the count would pass its cap. The count lives at least until ARGV[3]: the newest batch
-- charged to it expires, plus a grace for its sweep.
-- KEYS[1] the payer's count.
-- ARGV[1] bytes, ARGV[2] cap ('0': none), ARGV[3] keep until (ms since the epoch),
-- ARGV[4] now (ms since the epoch).
-- Returns {1, count after} when charged, {0, count held} when refused (nothing charged).
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
local bytes, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
if cap > 0 and held + bytes > cap then
  return {0, held}
end
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
local until_ms, now = tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 or now + ttl < until_ms then
  redis.call('PEXPIREAT', KEYS[1], until_ms)
end
return {1, n}
