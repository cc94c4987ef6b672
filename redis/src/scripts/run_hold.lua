-- Starts, renews or ends a run's hold on a photo's engine work (ports/src/runs.rs). The
-- photo's field holds `crashed:holder:until`: the runs that ended with their worker dying,
-- the token of the run holding it ('' for none) and until when that hold lasts, in Unix ms.
-- A value in the format before holds ('attempt:runs') reads as no crash and no holder.
-- KEYS[1] batch hash, KEYS[2] runs (it takes the batch's expiry).
-- ARGV[1] photo id, ARGV[2] mode: 'start', 'renew' or 'end', ARGV[3] the run's token,
-- ARGV[4] now in Unix ms, ARGV[5] how long the hold lasts, in ms.
-- Returns -1 when the batch does not exist. start: the crashed runs before this one, or -2
-- when another run's hold is live. renew: 1 when the caller holds the photo, else 0. end: 0.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local crashed, holder, untilms = 0, '', 0
local stored = redis.call('HGET', KEYS[2], ARGV[1])
if stored then
  local c, h, u = string.match(stored, '^(%d+):([^:]*):(%d+)$')
  if c then crashed, holder, untilms = tonumber(c), h, tonumber(u) end
end
local now = tonumber(ARGV[4])
local function store(new_holder, new_until)
  redis.call('HSET', KEYS[2], ARGV[1], string.format('%d:%s:%d', crashed, new_holder, new_until))
  redis.call('PEXPIREAT', KEYS[2], redis.call('HGET', KEYS[1], 'exp'))
end
local mode = ARGV[2]
if mode == 'end' then
  if holder == ARGV[3] then store('', 0) end
  return 0
end
if mode == 'renew' then
  if holder ~= ARGV[3] then return 0 end
  store(holder, now + tonumber(ARGV[5]))
  return 1
end
if holder ~= '' and holder ~= ARGV[3] then
  if untilms > now then return -2 end
  crashed = crashed + 1
end
store(ARGV[3], now + tonumber(ARGV[5]))
return crashed
