-- Counts one more run of a photo's resize at a delivery attempt; a run at another attempt
-- starts the count again. The hash takes the batch's expiry.
-- KEYS[1] batch hash, KEYS[2] runs.
-- ARGV[1] photo id, ARGV[2] attempt.
-- Returns the runs of that attempt started before this one, or -1 when the batch is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local before = 0
local stored = redis.call('HGET', KEYS[2], ARGV[1])
if stored then
  local at, runs = string.match(stored, '^(%d+):(%d+)$')
  if at == ARGV[2] then before = tonumber(runs) end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. (before + 1))
redis.call('PEXPIREAT', KEYS[2], redis.call('HGET', KEYS[1], 'exp'))
return before
