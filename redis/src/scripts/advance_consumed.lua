-- Raises the consumed mark: each field only when the new value is later.
-- KEYS[1] the mark (a hash: through, at; Unix ms).
-- ARGV[1] publish time of the latest job taken, ARGV[2] when it was taken, ARGV[3] time to
-- live in ms.
for i, field in ipairs({'through', 'at'}) do
  local stored = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  if tonumber(ARGV[i]) > stored then redis.call('HSET', KEYS[1], field, ARGV[i]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
