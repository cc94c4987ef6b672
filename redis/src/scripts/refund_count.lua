-- Takes bytes back from one payer's count; a count brought to 0 is removed, and a count that
-- is gone (lapsed) stays gone.
-- KEYS[1] the payer's count.
-- ARGV[1] bytes.
-- Returns the count after.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local n = redis.call('DECRBY', KEYS[1], ARGV[1])
if n <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
return n
