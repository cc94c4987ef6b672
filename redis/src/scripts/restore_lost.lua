-- Gives a queued record back to every photo the batch counts (its order list) that has
-- neither a record nor an outcome: its registration was lost (a Redis write lost with the
-- last second of the AOF, a failover, a hand edit). The record is named by the photo's id,
-- since its file name went with it.
-- KEYS[1] batch hash, KEYS[2] order, KEYS[3] photos, KEYS[4] outcomes.
-- ARGV none.
-- Returns the restored photo ids.
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local restored = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  if redis.call('HEXISTS', KEYS[3], id) == 0 and redis.call('HEXISTS', KEYS[4], id) == 0 then
    redis.call('HSET', KEYS[3], id, '{"id":"' .. id .. '","filename":"' .. id ..
      '","state":"queued","error":null,"width":null,"height":null,"outputs":[]}')
    restored[#restored + 1] = id
  end
end
if #restored > 0 then
  redis.call('PEXPIREAT', KEYS[3], redis.call('HGET', KEYS[1], 'exp'))
end
return restored
