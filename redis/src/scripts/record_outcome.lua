-- Records a photo's outcome once (HSETNX is the exactly-once gate) and moves the batch's
-- counter; completes a closed batch whose last photo this was.
-- KEYS[1] batch hash, KEYS[2] photos, KEYS[3] outcomes.
-- ARGV[1] photo id, ARGV[2] outcome JSON, ARGV[3] counter to move ('done' | 'failed').
-- Returns {'not_found'} (no such batch) | {'unknown_photo', '0', batch fields...}
--   | {'already', '0', batch fields...} | {'recorded', completed_now '0'|'1', batch fields...}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  return {'unknown_photo', '0', unpack(redis.call('HMGET', KEYS[1], 'meta', 'state', 'total', 'done', 'failed'))}
end
if redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[2]) == 0 then
  return {'already', '0', unpack(redis.call('HMGET', KEYS[1], 'meta', 'state', 'total', 'done', 'failed'))}
end
redis.call('PEXPIREAT', KEYS[3], redis.call('HGET', KEYS[1], 'exp'))
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
local now = '0'
if redis.call('HGET', KEYS[1], 'state') == 'processing' then
  local f = redis.call('HMGET', KEYS[1], 'total', 'done', 'failed')
  if tonumber(f[2]) + tonumber(f[3]) == tonumber(f[1]) then
    redis.call('HSET', KEYS[1], 'state', 'completed')
    now = '1'
  end
end
return {'recorded', now, unpack(redis.call('HMGET', KEYS[1], 'meta', 'state', 'total', 'done', 'failed'))}
