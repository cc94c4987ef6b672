-- Creates a batch, wiping anything left under its keys, and sets the batch hash to expire
-- at the batch's expiry (the other keys take it when first written). With an owner's set
-- (KEYS[9]), only while the owner has fewer than ARGV[4] open batches: batches of the set
-- the caller read and listed (KEYS[10..], ARGV[6..]) that are gone or no longer open leave
-- it first; one created meanwhile, not listed, counts as open.
-- KEYS[1] batch hash, KEYS[2] photos, KEYS[3] order, KEYS[4] outcomes, KEYS[5] pending,
-- KEYS[6] effects, KEYS[7] runs, KEYS[8] pending expiries; optional KEYS[9] the owner's
-- batches (sorted set batch id -> expiry in unix ms), KEYS[10..] their batch hashes.
-- ARGV[1] batch JSON (`meta`), ARGV[2] expiry in unix ms; with KEYS[9]: ARGV[3] batch id,
-- ARGV[4] most open batches, ARGV[5] now in unix ms, ARGV[6..] the ids of KEYS[10..].
-- Returns 1 when created, 0 when the owner has too many open batches.
if #KEYS >= 9 then
  redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', ARGV[5])
  for i = 6, #ARGV do
    if redis.call('HGET', KEYS[i + 4], 'state') ~= 'open' then
      redis.call('ZREM', KEYS[9], ARGV[i])
    end
  end
  if redis.call('ZCARD', KEYS[9]) >= tonumber(ARGV[4]) then return 0 end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'state', 'open', 'total', 0, 'done', 0,
  'failed', 0, 'exp', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
if #KEYS >= 9 then
  redis.call('ZADD', KEYS[9], ARGV[2], ARGV[3])
  -- The set lives as long as its longest-lived batch.
  local last = redis.call('ZRANGE', KEYS[9], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[9], last[2])
end
return 1
