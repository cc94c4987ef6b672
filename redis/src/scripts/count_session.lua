-- Counts a new session against its creator (a client address), unless the creator already
-- created ARGV[3] sessions within one session TTL. The session itself is stored after
-- (another slot); should that fail, the count stays until it ages out, erring on the safe
-- side.
-- KEYS[1] the creator's sessions (sorted set session id -> creation in unix ms).
-- ARGV[1] session TTL in ms, ARGV[2] now in unix ms, ARGV[3] most sessions, ARGV[4] session
-- id.
-- Returns 1 when counted (the session may be stored), 0 when refused.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[1]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
