-- redrive: put a parked (failed) invocation back as a new attempt series. Idempotent: a second
-- redrive finds it no longer failed and does nothing. Steps already journaled are kept.
-- KEYS[1] record, KEYS[2] steps, KEYS[3] children, KEYS[4] stream, KEYS[5] parked set
-- ARGV[1] invocation id
-- returns 'redriven' | 'not_failed' | 'unknown'
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return 'unknown' end
if st ~= 'failed' then return 'not_failed' end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, 3 do redis.call('PERSIST', KEYS[i]) end
redis.call('ZREM', KEYS[5], ARGV[1])
local eid = redis.call('XADD', KEYS[4], '*', 'i', ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'pending', 'attempt', 1, 'crashes', 0, 'entry', eid,
  'reason', '', 'finished', '', 'updated', now)
redis.call('HDEL', KEYS[1], 'cancel')
redis.call('HINCRBY', KEYS[1], 'redrives', 1)
return 'redriven'
