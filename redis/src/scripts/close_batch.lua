-- Stops a batch accepting photos: `processing`, or `completed` at once when every photo
-- already has its outcome. Idempotent.
-- KEYS[1] batch hash.
-- ARGV: none.
-- Returns {'not_found'} | {'ok', completed_now '0'|'1', batch fields...}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local now = '0'
if redis.call('HGET', KEYS[1], 'state') == 'open' then
  local f = redis.call('HMGET', KEYS[1], 'total', 'done', 'failed')
  if tonumber(f[2]) + tonumber(f[3]) == tonumber(f[1]) then
    redis.call('HSET', KEYS[1], 'state', 'completed')
    now = '1'
  else
    redis.call('HSET', KEYS[1], 'state', 'processing')
  end
end
return {'ok', now, unpack(redis.call('HMGET', KEYS[1], 'meta', 'state', 'total', 'done', 'failed'))}
