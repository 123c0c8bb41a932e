-- cancel: a queued or delayed invocation that never journaled anything becomes 'cancelled' at once
-- and never runs (its stream entry is dropped when read); a running one gets a cancel flag its
-- worker acts on; one with a journal (it suspended, ran steps or has children) is queued once
-- more so its handler sees Cancelled at its current await and may compensate. The first request
-- also cancels every child (an outbox message per child, relayed to the child's slot).
-- KEYS[1] record, KEYS[2] steps, KEYS[3] children, KEYS[4] inbox, KEYS[5] delayed set,
-- KEYS[6] audit stream, KEYS[7] done channel (the id is published there when it became
-- 'cancelled'), KEYS[8] outbox, KEYS[9] stream, KEYS[10] suspended set, KEYS[11] per-minute
-- counters ('resumed'), KEYS[12], KEYS[13] the high and low streams (lib/enqueue.lua), KEYS[14..]
-- the flow keys (lib/flow.lua; optional): a 'queued' one leaves its key's line; one admitted
-- already gives its permit to the next
-- ARGV[1] invocation id, ARGV[2] retention ms, ARGV[3] who asked (timeline actor, audited; '' =
-- library call, not audited), ARGV[4] '1' when a parent's cancel reached this child: an unknown
-- id gets a cancelled record (a tombstone), so a registration that comes later never runs,
-- ARGV[5] the service (for the tombstone)
-- timeline: 'cancel-requested' or 'cancelled'
-- returns 'cancelled' | 'cancelling' | 'terminal' | 'unknown'
-- uses: clock, terminal, timeline, finish, notify, wake, flow
fl_bind(KEYS, 14)
local r = redis.call('HMGET', KEYS[1], 'state', 'cancel', 'tl', 'parent', 'susp', 'step', 'kids', 'reply')
local st = r[1]
local who = ARGV[3] or ''
local ttl = tonumber(ARGV[2])
if not st then
  if ARGV[4] ~= '1' then return 'unknown' end
  local now = now_ms()
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'service', ARGV[5], 'handler', '', 'cancel', '1',
    'attempt', 1, 'deliveries', 0, 'crashes', 0, 'epoch', 0, 'created', now, 'updated', now,
    'finished', now, 'tl', tl_line(now, 'cancelled', who))
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 'cancelled'
end
if TERMINAL[st] then
  audit(KEYS[6], who, 'cancel', ARGV[1], 'terminal')
  return 'terminal'
end
local now = now_ms()
local first = r[2] ~= '1' and r[2] ~= '2'
if first then
  for _, child in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do relay(KEYS[8], 'cancel', child, ARGV[1]) end
end
local journal = r[5] or r[6] or r[7]
if st == 'running' or st == 'suspended' or journal then
  if first then
    local tl = tl_push(r[3], tl_line(now, 'cancel-requested', who))
    redis.call('HSET', KEYS[1], 'cancel', '1', 'tl', tl)
    if st == 'suspended' or st == 'retrying' or st == 'scheduled' then
      resume(KEYS[1], {KEYS[9], KEYS[12], KEYS[13]}, KEYS[5], KEYS[10], KEYS[11], ARGV[1], now, tl, who, 'cancel')
    end
  end
  audit(KEYS[6], who, 'cancel', ARGV[1], 'cancelling')
  return 'cancelling'
end
redis.call('ZREM', KEYS[5], ARGV[1])
if st == 'queued' then fl_unwait(KEYS[1], ARGV[1]) end
-- queued, not held: its entry stays named in the record (claim drops it when read)
finish(KEYS[1], {KEYS[2], KEYS[3], KEYS[4]}, ttl, now, 'cancelled', {'cancel', '1'}, false, r[3],
  tl_line(now, 'cancelled', who))
audit(KEYS[6], who, 'cancel', ARGV[1], 'cancelled')
notify(KEYS[7], {ARGV[1]})
if r[4] and r[4] ~= '' then relay(KEYS[8], 'done', r[4], ARGV[1], 'C{}') end
if r[8] then relay(KEYS[8], 'reply', r[8], ARGV[1], 'C{}') end
return 'cancelled'
