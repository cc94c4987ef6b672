-- Marks one side effect of a batch as done, expiring with the batch.
-- KEYS[1] batch hash, KEYS[2] effects.
-- ARGV[1] effect name.
-- Returns -1 when the batch does not exist, 1 for the first caller, else 0.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local first = redis.call('HSETNX', KEYS[2], ARGV[1], '1')
redis.call('PEXPIREAT', KEYS[2], redis.call('HGET', KEYS[1], 'exp'))
return first
