-- Takes a lease for a holder, or renews it when the holder has it already.
-- KEYS[1] the lease.
-- ARGV[1] holder, ARGV[2] time to live in ms.
-- Returns 1 when the holder has the lease now, 0 when another holder has it.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
