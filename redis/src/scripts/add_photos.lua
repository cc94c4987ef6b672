-- Registers queued photos, all or none; photos already registered are skipped. The limit
-- counts the batch's live pending uploads too (expired ones are dropped first), except
-- those of the photos being registered.
-- KEYS[1] batch hash, KEYS[2] photos, KEYS[3] order, KEYS[4] pending, KEYS[5] pending
-- expiries.
-- ARGV[1] photo limit, ARGV[2] now in unix ms, then (photo id, record JSON) pairs.
-- Returns {'not_found'} | {'closed'} | {'too_many'} | {'ok', '0', batch fields...}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then return {'closed'} end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[2])) do
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
end
local total = tonumber(redis.call('HGET', KEYS[1], 'total'))
local pending = redis.call('ZCARD', KEYS[5])
local fresh, seen = {}, {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if not seen[id] and redis.call('HEXISTS', KEYS[2], id) == 0 then
    seen[id] = true
    fresh[#fresh + 1] = i
    if redis.call('ZSCORE', KEYS[5], id) then pending = pending - 1 end
  end
end
if total + pending + #fresh > tonumber(ARGV[1]) then return {'too_many'} end
if #fresh > 0 then
  local exp = redis.call('HGET', KEYS[1], 'exp')
  for _, i in ipairs(fresh) do
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    redis.call('RPUSH', KEYS[3], ARGV[i])
  end
  redis.call('HINCRBY', KEYS[1], 'total', #fresh)
  redis.call('PEXPIREAT', KEYS[2], exp)
  redis.call('PEXPIREAT', KEYS[3], exp)
end
return {'ok', '0', unpack(redis.call('HMGET', KEYS[1], 'meta', 'state', 'total', 'done', 'failed'))}
