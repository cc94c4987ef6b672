-- Reads a photo's queued record and its outcome in one round trip.
-- KEYS[1] photos, KEYS[2] outcomes.
-- ARGV[1] photo id.
-- Returns {record JSON or '', outcome JSON or ''}.
return {redis.call('HGET', KEYS[1], ARGV[1]) or '', redis.call('HGET', KEYS[2], ARGV[1]) or ''}
