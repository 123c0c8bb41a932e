-- redrive: put a failed invocation (parked or archived) back as a new attempt series. Idempotent:
-- a second redrive finds it no longer failed and does nothing. Steps, children and the inbox
-- already journaled are kept. A parent that already saw this child fail keeps that outcome (the
-- first outcome in an inbox stands).
-- KEYS[1] record, KEYS[2] steps, KEYS[3] children, KEYS[4] inbox, KEYS[5] stream, KEYS[6] parked
-- set, KEYS[7] archive set, KEYS[8] audit stream, KEYS[9], KEYS[10] the high and low streams,
-- KEYS[11..] the flow keys (lib/flow.lua; optional): a keyed one waits for a permit again, at its
-- original place in its key's line
-- ARGV[1] invocation id, ARGV[2] who asked (timeline actor, audited; '' = library call, not audited)
-- timeline: 'redriven'. An id whose record expired is removed from the parked and archive sets.
-- returns 'redriven' | 'not_failed' | 'unknown'
-- uses: clock, timeline, enqueue, flow
fl_bind(KEYS, 11)
local r = redis.call('HMGET', KEYS[1], 'state', 'tl', 'prio')
local st = r[1]
if not st then
  redis.call('ZREM', KEYS[6], ARGV[1])
  redis.call('ZREM', KEYS[7], ARGV[1])
  return 'unknown'
end
if st ~= 'failed' then
  audit(KEYS[8], ARGV[2], 'redrive', ARGV[1], 'not_failed')
  return 'not_failed'
end
local now = now_ms()
for i = 1, 4 do redis.call('PERSIST', KEYS[i]) end
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
local state, eid = 'pending', ''
if fl_requeue(KEYS[1], ARGV[1], now) then
  state = 'queued'
else
  eid = enqueue({KEYS[5], KEYS[9], KEYS[10]}, r[3], ARGV[1])
end
redis.call('HSET', KEYS[1], 'state', state, 'attempt', 1, 'crashes', 0, 'entry', eid,
  'reason', '', 'finished', '', 'updated', now, 'discarded', '',
  'tl', tl_push(r[2], tl_line(now, 'redriven', ARGV[2] or '')))
redis.call('HDEL', KEYS[1], 'cancel')
redis.call('HINCRBY', KEYS[1], 'redrives', 1)
audit(KEYS[8], ARGV[2], 'redrive', ARGV[1], 'redriven')
return 'redriven'
