-- What was charged under one batch, and to whom: hash {session, address, bytes}, kept apart
-- from the batch's own keys so that it outlives a delete until the sweep gives it back.
-- KEYS[1] the batch's charge record.
-- ARGV[1] mode: 'add' (ARGV[2] bytes, ARGV[3] session, ARGV[4] address or '' when unknown,
--   ARGV[5] keep until and ARGV[6] now, ms since the epoch: the first payer stays the payer),
--   'refund' (ARGV[2] bytes, at most what is charged), 'release' (everything; the record goes).
-- Returns {session, address, bytes applied}; {} when there is nothing to refund or release.
local mode = ARGV[1]
if mode == 'add' then
  redis.call('HSETNX', KEYS[1], 'session', ARGV[3])
  if ARGV[4] ~= '' then
    redis.call('HSETNX', KEYS[1], 'address', ARGV[4])
  end
  redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[2])
  local until_ms, now = tonumber(ARGV[5]), tonumber(ARGV[6])
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 or now + ttl < until_ms then
    redis.call('PEXPIREAT', KEYS[1], until_ms)
  end
  local payer = redis.call('HMGET', KEYS[1], 'session', 'address')
  return {payer[1], payer[2] or '', ARGV[2]}
end
local record = redis.call('HMGET', KEYS[1], 'session', 'address', 'bytes')
if not record[1] then
  return {}
end
local held = tonumber(record[3] or '0')
local bytes = held
if mode == 'refund' then
  bytes = math.min(held, tonumber(ARGV[2]))
end
if bytes >= held then
  redis.call('DEL', KEYS[1])
else
  redis.call('HINCRBY', KEYS[1], 'bytes', -bytes)
end
return {record[1], record[2] or '', tostring(bytes)}
