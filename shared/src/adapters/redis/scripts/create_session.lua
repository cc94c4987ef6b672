-- Stores a new session unless its creator (a client address) already created ARGV[4]
-- sessions within one session TTL.
-- KEYS[1] session, KEYS[2] the creator's sessions (sorted set session id -> creation in
-- unix ms).
-- ARGV[1] session JSON, ARGV[2] session TTL in ms, ARGV[3] now in unix ms, ARGV[4] most
-- sessions, ARGV[5] session id.
-- Returns 1 when stored, 0 when refused.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
