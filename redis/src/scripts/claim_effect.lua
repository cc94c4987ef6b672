-- Takes, renews or releases the claim on one side effect of a batch (a field of the
-- batch's effects hash holding the claim's time in Unix ms), expiring with the batch.
-- KEYS[1] batch hash, KEYS[2] effects.
-- ARGV[1] claim field, ARGV[2] mode: 'take', 'renew' or 'release', ARGV[3] now in ms,
-- ARGV[4] (take) how old a claim must be to be taken over, in ms.
-- Returns -1 when the batch does not exist, 1 when the caller holds the claim now, else 0.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[2] == 'release' then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 0
end
if ARGV[2] == 'take' then
  -- A claim stored before claims had times ('1') reads as the oldest: taken over.
  local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '')
  if held and held > tonumber(ARGV[3]) - tonumber(ARGV[4]) then return 0 end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PEXPIREAT', KEYS[2], redis.call('HGET', KEYS[1], 'exp'))
return 1
