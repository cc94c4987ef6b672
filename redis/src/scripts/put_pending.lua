-- Remembers presigned uploads, all or none, until they expire: each in the pending hash
-- and, by expiry, in the pending expiry set, which counts the live ones against the photo
-- limit (photos registered plus uploads pending). Expired entries are dropped first.
-- KEYS[1] batch hash, KEYS[2] pending, KEYS[3] pending expiries.
-- ARGV[1] photo limit ('-1': none, for a ticket handed back), ARGV[2] now in unix ms,
-- then (photo id, expiry in unix ms, pending upload JSON) triples.
-- Returns 'not_found' | 'closed' | 'too_many' | 'ok'.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'not_found' end
local limit = tonumber(ARGV[1])
if limit >= 0 and redis.call('HGET', KEYS[1], 'state') ~= 'open' then return 'closed' end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
if limit >= 0 then
  local fresh, seen = 0, {}
  for i = 3, #ARGV, 3 do
    if not seen[ARGV[i]] and not redis.call('ZSCORE', KEYS[3], ARGV[i]) then
      seen[ARGV[i]] = true
      fresh = fresh + 1
    end
  end
  local total = tonumber(redis.call('HGET', KEYS[1], 'total'))
  if total + redis.call('ZCARD', KEYS[3]) + fresh > limit then return 'too_many' end
end
local exp = redis.call('HGET', KEYS[1], 'exp')
for i = 3, #ARGV, 3 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  redis.call('ZADD', KEYS[3], ARGV[i + 1], ARGV[i])
end
redis.call('PEXPIREAT', KEYS[2], exp)
redis.call('PEXPIREAT', KEYS[3], exp)
return 'ok'
