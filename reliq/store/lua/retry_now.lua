-- retry_now: queue a retrying invocation at once instead of after its backoff (operator action).
-- KEYS[1] record, KEYS[2] delayed set, KEYS[3] stream, KEYS[4] audit stream, KEYS[5], KEYS[6] the
-- high and low streams (lib/enqueue.lua)
-- ARGV[1] invocation id, ARGV[2] who asked (timeline actor, audited)
-- timeline: 'retry-now'
-- returns 'queued' | 'not_retrying' | 'unknown'
-- uses: clock, timeline, enqueue
local r = redis.call('HMGET', KEYS[1], 'state', 'tl', 'prio')
if not r[1] then return 'unknown' end
if r[1] ~= 'retrying' or redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then
  audit(KEYS[4], ARGV[2], 'retry-now', ARGV[1], 'not_retrying')
  return 'not_retrying'
end
local now = now_ms()
local eid = enqueue({KEYS[3], KEYS[5], KEYS[6]}, r[3], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'pending', 'entry', eid, 'due', now, 'updated', now,
  'tl', tl_push(r[2], tl_line(now, 'retry-now', ARGV[2])))
audit(KEYS[4], ARGV[2], 'retry-now', ARGV[1], 'queued')
return 'queued'
