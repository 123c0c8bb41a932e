-- suspend: end an attempt whose handler waits only for durable things (children, timers,
-- promises) that are not ready: it holds no worker slot and no stream entry while it waits.
-- Epoch-fenced. When what it waits for is ready already (it arrived meanwhile), or a cancel was
-- requested, it is queued again at once instead.
-- KEYS[1] record, KEYS[2] inbox, KEYS[3] stream, KEYS[4] delayed set, KEYS[5] suspended set,
-- KEYS[6] per-minute counters ('resumed'), KEYS[7..9] the streams {normal, high, low} (KEYS[3] is
-- the one the entry is in; a resume goes to the record's priority: lib/enqueue.lua), KEYS[10..]
-- the flow keys (lib/flow.lua; optional): by its spec (keep = false) it gives its per-key permit
-- back, and waits for one again on resume
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] epoch, ARGV[4] waits (JSON, lib/wake.lua),
-- ARGV[5] invocation id, ARGV[6] what it waits for (timeline detail)
-- timeline: 'suspended' (what for), and 'resumed' when queued again at once
-- returns 'suspended' | 'resumed' | 'fenced' | 'noop'
-- uses: clock, fence, ack, timeline, wake, flow
fl_bind(KEYS, 10)
local r = redis.call('HMGET', KEYS[1], 'epoch', 'state', 'owner', 'tl', 'cancel', 'susp')
local refused = fence(r[1], r[2], ARGV[3])
if refused then return refused end
local now = now_ms()
ack(KEYS[3], ARGV[1], {ARGV[2]})
fl_suspend(KEYS[1], ARGV[5])
redis.call('HSET', KEYS[1], 'susp', (tonumber(r[6]) or 0) + 1, 'owner', '', 'lease_until', '', 'entry', '')
local tl = tl_push(r[4], tl_line(now, 'suspended', r[3], ARGV[3], ARGV[6]))
local ready, nxt = waits_ready(KEYS[2], ARGV[4], now)
if ready or r[5] == '1' then
  if r[5] == '1' then redis.call('HSET', KEYS[1], 'cancel', '2') end
  resume(KEYS[1], {KEYS[7], KEYS[8], KEYS[9]}, KEYS[4], KEYS[5], KEYS[6], ARGV[5], now, tl, '', r[5] == '1' and 'cancel' or 'ready')
  return 'resumed'
end
redis.call('HSET', KEYS[1], 'state', 'suspended', 'waits', ARGV[4], 'updated', now, 'tl', tl)
redis.call('ZADD', KEYS[5], now, ARGV[5])
if nxt then redis.call('ZADD', KEYS[4], nxt, ARGV[5]) end
return 'suspended'
