-- Tells since when a batch has shown a progress marker: stores the marker with the current
-- time when it differs from the stored one (or on restart). The watch lives in the batch
-- hash, so it expires and is deleted with the batch.
-- KEYS[1] batch hash.
-- ARGV[1] marker, ARGV[2] now in unix ms, ARGV[3] '1' to restart the watch.
-- Returns the unix ms since when the marker has been shown, or -1 when the batch is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local stored = redis.call('HGET', KEYS[1], 'watch')
if stored and ARGV[3] ~= '1' then
  local since, marker = string.match(stored, '^(%d+)|(.*)$')
  if marker == ARGV[1] then return tonumber(since) end
end
redis.call('HSET', KEYS[1], 'watch', ARGV[2] .. '|' .. ARGV[1])
return tonumber(ARGV[2])
