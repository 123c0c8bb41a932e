-- retry: schedule another attempt after a backoff (epoch-fenced). A cancel requested meanwhile wins.
-- KEYS[1] record, KEYS[2] steps, KEYS[3] children, KEYS[4] inbox, KEYS[5] stream,
-- KEYS[6] delayed set, KEYS[7] per-minute counters, KEYS[8] done channel (the id is published
-- there when cancelled), KEYS[9] outbox (a parent learns of the cancel), KEYS[10..15] the flow
-- keys (lib/flow.lua; optional). A retry keeps its per-key permit; its cancel releases it.
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] epoch, ARGV[4] delay ms, ARGV[5] error (JSON),
-- ARGV[6] invocation id, ARGV[7] retention ms, ARGV[8] '1': the attempt was a compensation that
-- failed (reliq/worker/decide.py): its cancel, seen, waits for the next run instead of ending it;
-- '2': a cancel interrupted the handler outside a durable await (a bare CancelledError): with a
-- journal ('susp', 'step', 'kids') it is queued at once, its cancel still requested, so the claim
-- runs it to compensate (claim.lua); without one it ends cancelled here
-- timeline: 'retry' (next attempt, due) or 'cancelled'; counters: retried / cancelled
-- returns 'ok' | 'cancelled' | 'fenced' | 'noop'
-- uses: clock, fence, ack, timeline, finish, notify, wake, flow
fl_bind(KEYS, 10)
local r = redis.call('HMGET', KEYS[1], 'epoch', 'state', 'cancel', 'owner', 'tl', 'parent', 'reply')
local refused = fence(r[1], r[2], ARGV[3])
if refused then return refused end
local now = now_ms()
ack(KEYS[5], ARGV[1], {ARGV[2]})
local cancel = r[3] == '1' or r[3] == '2'
local keep = ARGV[8] == '1'
if ARGV[8] == '2' then
  cancel = true  -- (a worker's own cancel, without the flag, ends it as before)
  if r[3] == '1' then
    local j = redis.call('HMGET', KEYS[1], 'susp', 'step', 'kids')
    keep = (j[1] or j[2] or j[3]) and true or false
  end
end
if cancel and not keep then
  finish(KEYS[1], {KEYS[2], KEYS[3], KEYS[4]}, tonumber(ARGV[7]), now, 'cancelled', {'error', ARGV[5]}, true,
    r[5], tl_line(now, 'cancelled', r[4], ARGV[3]))
  count_minute(KEYS[7], now, 'cancelled', 1)
  notify(KEYS[8], {ARGV[6]})
  if r[6] and r[6] ~= '' then relay(KEYS[9], 'done', r[6], ARGV[6], 'C' .. ARGV[5]) end
  if r[7] then relay(KEYS[9], 'reply', r[7], ARGV[6], 'C' .. ARGV[5]) end
  return 'cancelled'
end
if ARGV[8] == '1' and r[3] == '1' then redis.call('HSET', KEYS[1], 'cancel', '2') end
local due = now + tonumber(ARGV[4])
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'state', 'retrying', 'error', ARGV[5], 'due', due, 'updated', now,
  'owner', '', 'lease_until', '', 'entry', '',
  'tl', tl_push(r[5], tl_line(now, 'retry', r[4], ARGV[3], 'attempt ' .. attempt, due)))
redis.call('ZADD', KEYS[6], due, ARGV[6])
count_minute(KEYS[7], now, 'retried', 1)
return 'ok'
