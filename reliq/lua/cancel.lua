-- cancel: a queued or delayed invocation becomes 'cancelled' at once and never runs (its stream
-- entry is dropped when read); a running one gets a cancel flag its worker acts on.
-- KEYS[1] record, KEYS[2] steps, KEYS[3] children, KEYS[4] delayed set
-- ARGV[1] invocation id, ARGV[2] retention ms
-- returns 'cancelled' | 'cancelling' | 'terminal' | 'unknown'
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return 'unknown' end
if st == 'succeeded' or st == 'failed' or st == 'cancelled' then return 'terminal' end
if st == 'running' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  return 'cancelling'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'cancel', '1', 'finished', now, 'updated', now)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2])) end
return 'cancelled'
