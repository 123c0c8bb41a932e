-- cron_tick: place the due ticks of one schedule and move its cursor, unless another worker (or a
-- change of the schedule) came first. Every worker's tick loop may call it for the same tick: the
-- cursor check lets one through, and a tick's id derives from (schedule, tick time), so even a
-- caller that passed the check twice (a re-send) places each tick once.
-- KEYS[1] stream, KEYS[2] delayed, KEYS[3] schedules, KEYS[4] ticks, KEYS[5] cron (partition 0)
-- KEYS[6], KEYS[7] the high and low streams (lib/enqueue.lua), KEYS[8..n+7] the ticks' records
-- ARGV[1] service, ARGV[2] schedule name, ARGV[3] the cursor the caller planned from,
-- ARGV[4] the schedule's JSON the caller planned from, ARGV[5] new cursor (ms),
-- ARGV[6] next fire time (ms); then 2 per tick, as register.lua: packed registration, payload
-- returns {status, placed}: 'placed' (placed = ticks new here) | 'moved' (the cursor or the
--   schedule changed since the caller read them) | 'paused' | 'gone' (deleted)
-- uses: clock, place
local name = ARGV[2]
local spec = redis.call('HGET', KEYS[3], name)
if not spec then
  redis.call('ZREM', KEYS[5], name)
  return {'gone', 0}
end
if redis.call('HEXISTS', KEYS[4], name .. ':p') == 1 then
  redis.call('ZREM', KEYS[5], name)
  return {'paused', 0}
end
if spec ~= ARGV[4] or (redis.call('HGET', KEYS[4], name) or '') ~= ARGV[3] then return {'moved', 0} end
local now = now_ms()
local placed, last = 0, nil
for i = 8, #KEYS do
  local a = (i - 8) * 2 + 7
  local f = cmsgpack.unpack(ARGV[a])
  if not redis.call('HGET', KEYS[i], 'state') then
    place(KEYS[i], {KEYS[1], KEYS[6], KEYS[7]}, KEYS[2], ARGV[1], f, ARGV[a + 1], now)
    placed = placed + 1
  end
  last = f[1]
end
redis.call('HSET', KEYS[4], name, ARGV[5])
if last then redis.call('HSET', KEYS[4], name .. ':i', last) end
redis.call('ZADD', KEYS[5], ARGV[6], name)
return {'placed', placed}
