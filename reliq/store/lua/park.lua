-- park: fail an invocation for good (attempts exhausted, terminal error, crash loop, a child that
-- failed); epoch-fenced. It stays listed in the parked set (dead letters) and its record expires
-- after the retention. A parent learns of it through the outbox.
-- KEYS[1] record, KEYS[2] steps, KEYS[3] children, KEYS[4] inbox, KEYS[5] stream,
-- KEYS[6] parked set, KEYS[7] per-minute counters, KEYS[8] done channel, KEYS[9] outbox,
-- KEYS[10..17] the flow keys (lib/flow.lua; optional: the permit is released by finish)
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] epoch, ARGV[4] reason, ARGV[5] error (JSON),
-- ARGV[6] invocation id, ARGV[7] retention ms
-- timeline: 'parked' (reason); counters: failed; the id is published on the done channel
-- returns 'ok' | 'fenced' | 'noop'
-- uses: clock, fence, ack, timeline, finish, notify, wake, flow
fl_bind(KEYS, 10)
local r = redis.call('HMGET', KEYS[1], 'epoch', 'state', 'owner', 'tl', 'parent', 'reply')
local refused = fence(r[1], r[2], ARGV[3])
if refused then return refused end
local now = now_ms()
local ttl = tonumber(ARGV[7])
finish(KEYS[1], {KEYS[2], KEYS[3], KEYS[4]}, ttl, now, 'failed', {'reason', ARGV[4], 'error', ARGV[5]},
  true, r[4], tl_line(now, 'parked', r[3], ARGV[3], ARGV[4]))
redis.call('ZADD', KEYS[6], now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - ttl)
ack(KEYS[5], ARGV[1], {ARGV[2]})
count_minute(KEYS[7], now, 'failed', 1)
notify(KEYS[8], {ARGV[6]})
if r[5] and r[5] ~= '' then relay(KEYS[9], 'done', r[5], ARGV[6], 'F' .. ARGV[5]) end
if r[6] then relay(KEYS[9], 'reply', r[6], ARGV[6], 'F' .. ARGV[5]) end
return 'ok'
