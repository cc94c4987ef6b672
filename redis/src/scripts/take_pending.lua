-- Removes and returns a pending upload, so only one caller completes it.
-- KEYS[1] pending, KEYS[2] pending expiries.
-- ARGV[1] photo id.
-- Returns the pending upload JSON, or '' when there is none.
local v = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if not v then return '' end
redis.call('HDEL', KEYS[1], ARGV[1])
return v
