-- wake: store what an invocation waits for in its inbox (a child's outcome, relayed from the
-- child's slot; a promise's value or rejection from outside) and, when it is suspended and its
-- wait is now over, queue it again. Idempotent: the first value of a field stands.
-- KEYS[1] record, KEYS[2] inbox, KEYS[3] stream, KEYS[4] delayed set, KEYS[5] suspended set,
-- KEYS[6] done channel (a running attempt that waits in memory listens there), KEYS[7] per-minute
-- counters ('resumed'), KEYS[8], KEYS[9] the high and low streams (lib/enqueue.lua), KEYS[10..]
-- the flow keys (lib/flow.lua; optional)
-- ARGV[1] inbox field ('c:<child id>' | 'p:<promise name>'), ARGV[2] value (kind letter + JSON,
-- lib/wake.lua), ARGV[3] invocation id, ARGV[4] who (timeline actor)
-- timeline: 'resumed' (the field) when queued again
-- returns 'resumed' | 'stored' | 'duplicate' (the field had a value, also after the invocation
-- finished: a re-sent resolve whose first send landed must hear that, not 'terminal') | 'terminal'
-- (finished without a value in the field) | 'unknown'
-- uses: clock, terminal, notify, wake, flow
fl_bind(KEYS, 10)
local r = redis.call('HMGET', KEYS[1], 'state', 'tl', 'waits')
if not r[1] then return 'unknown' end
if TERMINAL[r[1]] then
  if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 'duplicate' end
  return 'terminal'
end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 'duplicate' end
redis.call('HSET', KEYS[1], 'ibx', 1)
notify(KEYS[6], {ARGV[3]})
if r[1] == 'suspended' then
  local now = now_ms()
  if waits_ready(KEYS[2], r[3], now) then
    resume(KEYS[1], {KEYS[3], KEYS[8], KEYS[9]}, KEYS[4], KEYS[5], KEYS[7], ARGV[3], now, r[2], ARGV[4], ARGV[1])
    return 'resumed'
  end
end
return 'stored'
