-- retry: schedule another attempt after a backoff (epoch-fenced). A cancel requested meanwhile wins.
-- KEYS[1] record, KEYS[2] steps, KEYS[3] children, KEYS[4] stream, KEYS[5] delayed set,
-- KEYS[6] per-minute counters, KEYS[7] done channel (the id is published there when cancelled)
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] epoch, ARGV[4] delay ms, ARGV[5] error (JSON),
-- ARGV[6] invocation id, ARGV[7] retention ms
-- timeline: 'retry' (next attempt, due) or 'cancelled'; counters: retried / cancelled
-- returns 'ok' | 'cancelled' | 'fenced' | 'noop'
-- uses: clock, fence, ack, timeline, finish, notify
local r = redis.call('HMGET', KEYS[1], 'epoch', 'state', 'cancel', 'owner', 'tl')
local refused = fence(r[1], r[2], ARGV[3])
if refused then return refused end
local now = now_ms()
ack(KEYS[4], ARGV[1], {ARGV[2]})
if r[3] == '1' then
  finish(KEYS[1], {KEYS[2], KEYS[3]}, tonumber(ARGV[7]), now, 'cancelled', {'error', ARGV[5]}, true, r[5],
    tl_line(now, 'cancelled', r[4], ARGV[3]))
  count_minute(KEYS[6], now, 'cancelled', 1)
  notify(KEYS[7], {ARGV[6]})
  return 'cancelled'
end
local due = now + tonumber(ARGV[4])
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'state', 'retrying', 'error', ARGV[5], 'due', due, 'updated', now,
  'owner', '', 'lease_until', '', 'entry', '',
  'tl', tl_push(r[5], tl_line(now, 'retry', r[4], ARGV[3], 'attempt ' .. attempt, due)))
redis.call('ZADD', KEYS[5], due, ARGV[6])
count_minute(KEYS[6], now, 'retried', 1)
return 'ok'
