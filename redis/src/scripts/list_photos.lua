-- One page of photos in insertion order, each with its outcome.
-- KEYS[1] batch hash, KEYS[2] order, KEYS[3] photos, KEYS[4] outcomes.
-- ARGV[1] first index, ARGV[2] last index (inclusive).
-- Returns {'not_found'} | {'ok', order length, then (record or '', outcome or '') pairs}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local out = {'ok', tostring(redis.call('LLEN', KEYS[2]))}
for _, id in ipairs(redis.call('LRANGE', KEYS[2], ARGV[1], ARGV[2])) do
  out[#out + 1] = redis.call('HGET', KEYS[3], id) or ''
  out[#out + 1] = redis.call('HGET', KEYS[4], id) or ''
end
return out
