-- cancel: a queued or delayed invocation becomes 'cancelled' at once and never runs (its stream
-- entry is dropped when read); a running one gets a cancel flag its worker acts on.
-- KEYS[1] record, KEYS[2] steps, KEYS[3] children, KEYS[4] delayed set, KEYS[5] audit stream,
-- KEYS[6] done channel (the id is published there when it became 'cancelled')
-- ARGV[1] invocation id, ARGV[2] retention ms, ARGV[3] who asked (timeline actor, audited; '' =
-- library call, not audited)
-- timeline: 'cancel-requested' (running) or 'cancelled'
-- returns 'cancelled' | 'cancelling' | 'terminal' | 'unknown'
-- uses: clock, terminal, timeline, finish, notify
local r = redis.call('HMGET', KEYS[1], 'state', 'cancel', 'tl')
local st = r[1]
if not st then return 'unknown' end
if TERMINAL[st] then
  audit(KEYS[5], ARGV[3], 'cancel', ARGV[1], 'terminal')
  return 'terminal'
end
local now = now_ms()
local who = ARGV[3] or ''
if st == 'running' then
  if r[2] ~= '1' then
    redis.call('HSET', KEYS[1], 'cancel', '1', 'tl', tl_push(r[3], tl_line(now, 'cancel-requested', who)))
  end
  audit(KEYS[5], who, 'cancel', ARGV[1], 'cancelling')
  return 'cancelling'
end
redis.call('ZREM', KEYS[4], ARGV[1])
-- queued, not held: its entry stays named in the record (claim drops it when read)
finish(KEYS[1], {KEYS[2], KEYS[3]}, tonumber(ARGV[2]), now, 'cancelled', {'cancel', '1'}, false, r[3],
  tl_line(now, 'cancelled', who))
audit(KEYS[5], who, 'cancel', ARGV[1], 'cancelled')
notify(KEYS[6], {ARGV[1]})
return 'cancelled'
