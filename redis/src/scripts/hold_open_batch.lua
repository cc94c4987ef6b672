-- Counts a batch, already created and open, among its owner's open batches, unless the
-- owner holds ARGV[3] open batches already. Members the caller found no longer open (or
-- gone) leave first, and expired ones; a member the caller did not check counts as open.
-- KEYS[1] the owner's batches (sorted set batch id -> expiry in unix ms).
-- ARGV[1] batch id, ARGV[2] its expiry in unix ms, ARGV[3] most open batches, ARGV[4] now
-- in unix ms, ARGV[5..] ids of members found no longer open.
-- Returns 1 when held, 0 when the owner has too many open batches.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
for i = 5, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
end
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
    and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
-- The set lives as long as its longest-lived batch.
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
