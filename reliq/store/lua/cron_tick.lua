-- cron_tick: place the due ticks of a round of schedules and move each one's cursor, unless
-- another worker (or a change of the schedule) came first. One call covers many schedules (all
-- of one service: their keys and their ticks' records share partition 0's slot), so a round of
-- due schedules costs one round trip and one fsync. Every worker's tick loop may call it for the
-- same ticks: the cursor check lets one through per schedule, and a tick's id derives from
-- (schedule, tick time), so even a caller that passed the check twice (a re-send) places each
-- tick once. Each schedule is decided on its own: one that moved does not hold back the others.
-- KEYS[1] stream, KEYS[2] delayed, KEYS[3] schedules, KEYS[4] ticks, KEYS[5] cron (partition 0)
-- KEYS[6], KEYS[7] the high and low streams (lib/enqueue.lua), KEYS[8..] the ticks' invocation
-- records, schedule after schedule, in ARGV's order; then the 8 flow keys (lib/flow.lua
-- fl_bind): a tick passes the rate and concurrency gates like a send
-- ARGV[1] service, ARGV[2] number of schedules; then per schedule 7 values: name, the cursor the
-- caller planned from, the schedule's JSON the caller planned from, new cursor (ms), next fire
-- time (ms), the id of the last tick the caller placed before this call or '' (a multi-partition
-- service's ticks are placed like sends, in their own partitions, by register.lua; this call then
-- only moves the cursor: worker/cron.py), number of ticks m; then 2 per tick, as register.lua:
-- packed registration, payload
-- returns {status, placed} per schedule, flat: 'placed' (placed = ticks new here) | 'moved' (the
--   cursor or the schedule changed since the caller read them) | 'paused' | 'gone' (deleted)
-- uses: clock, place, flow
local now = now_ms()
fl_bind(KEYS, #KEYS - 7)
local out = {}
local a, k = 3, 8
for _ = 1, tonumber(ARGV[2]) do
  local name, cursor, planned = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local new_cursor, next_fire, elsewhere, m = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], tonumber(ARGV[a + 6])
  local first_tick, first_key = a + 7, k
  a, k = a + 7 + 2 * m, k + m
  local spec = redis.call('HGET', KEYS[3], name)
  if not spec then
    redis.call('ZREM', KEYS[5], name)
    out[#out + 1], out[#out + 2] = 'gone', 0
  elseif redis.call('HEXISTS', KEYS[4], name .. ':p') == 1 then
    redis.call('ZREM', KEYS[5], name)
    out[#out + 1], out[#out + 2] = 'paused', 0
  elseif spec ~= planned or (redis.call('HGET', KEYS[4], name) or '') ~= cursor then
    out[#out + 1], out[#out + 2] = 'moved', 0
  else
    local placed, last = 0, elsewhere ~= '' and elsewhere or nil
    for i = 0, m - 1 do
      local f = cmsgpack.unpack(ARGV[first_tick + 2 * i])
      local rec = KEYS[first_key + i]
      local payload = ARGV[first_tick + 2 * i + 1]
      local fx = nil
      if not redis.call('HGET', rec, 'state') then
        fx = fl_new(f, payload)
        -- a tick whose flow key is bad is decided (skipped), not placed: the worker logs it
        if fx ~= false then
          place(rec, {KEYS[1], KEYS[6], KEYS[7]}, KEYS[2], ARGV[1], f, payload, now, fx)
          placed = placed + 1
        end
      end
      if fx ~= false then last = f[1] end
    end
    redis.call('HSET', KEYS[4], name, new_cursor)
    if last then redis.call('HSET', KEYS[4], name .. ':i', last) end
    redis.call('ZADD', KEYS[5], next_fire, name)
    out[#out + 1], out[#out + 2] = 'placed', placed
  end
end
return out
