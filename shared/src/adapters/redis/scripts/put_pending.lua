-- Remembers a presigned upload until the batch expires.
-- KEYS[1] batch hash, KEYS[2] pending.
-- ARGV[1] photo id, ARGV[2] pending upload JSON.
-- Returns 0 when the batch does not exist, else 1.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIREAT', KEYS[2], redis.call('HGET', KEYS[1], 'exp'))
return 1
