-- Creates a batch, wiping anything left under its keys, and sets the batch hash to expire
-- at the batch's expiry (the other keys take it when first written).
-- KEYS[1] batch hash, KEYS[2] photos, KEYS[3] order, KEYS[4] outcomes, KEYS[5] pending,
-- KEYS[6] effects, KEYS[7] runs, KEYS[8] pending expiries.
-- ARGV[1] batch JSON (`meta`), ARGV[2] expiry in unix ms.
-- Returns 1.
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'state', 'open', 'total', 0, 'done', 0,
  'failed', 0, 'exp', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
