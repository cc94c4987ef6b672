-- Opens or renews one event stream's lease, within the session's cap.
-- KEYS[1] the session's leases: sorted set stream id -> lease expiry (unix ms).
-- ARGV[1] stream id, ARGV[2] most live leases, ARGV[3] lease in ms.
-- Returns 1 when the lease is held (opened or renewed), 0 when the cap is reached.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[3])
-- Leases of streams whose replica died lapse here.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
-- The set lives as long as its longest lease.
redis.call('PEXPIRE', KEYS[1], lease)
return 1
