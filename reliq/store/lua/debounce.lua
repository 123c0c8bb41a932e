-- debounce: join the open window of a debounce key, or open one (Client.send(debounce=...)).
-- A window is one invocation waiting in the delayed set; the debounce key names it while it waits.
-- KEYS[1] stream, KEYS[2] delayed set, KEYS[3] the debounce key reliq:{S}:debounce:<token> (hash:
--   'id' the window's invocation, 'mode'; TTL window + 1 s), KEYS[4] the record of the id the
--   caller read from KEYS[3] (when it read none: the new record again), KEYS[5] the new record,
--   KEYS[6], KEYS[7] the high and low streams (lib/enqueue.lua), KEYS[8..] the flow keys (lib/flow.lua
--   fl_bind; optional: without them no limit applies)
-- ARGV[1] service; ARGV[2] the new invocation as register.lua's msgpack array (f[1] its id, f[6]
--   the window in ms; f[12] a callable concurrency key's value, computed by the sender); ARGV[3] payload; ARGV[4] the id the caller read ('' none); ARGV[5] mode
--   'debounce' (a join pushes the due time to now + window and replaces the payload) or
--   'throttle' (a join changes nothing: the first payload runs, one window after the first send)
-- A keyed handler's window carries its flow key ('fk', of the latest payload in 'debounce' mode), so
-- that its promotion passes the concurrency gate of that key (lib/flow.lua fl_promote), as a delayed
-- send does; a missing or bad key value is refused before anything is written.
-- A debounce window ends at its due time: once promote has found it rate-limited ('scheduled', wait
-- 'rate'), a send opens a new window (a join would start it before its reserved slot).
-- returns {status, id, state}: 'accepted' (a new window: f[1] placed, 'scheduled'), 'debounced'
--   (joined the window of id), 'moved' (KEYS[3] names another id than ARGV[4]: read it again),
--   'bad_key' (the handler's flow key is missing from the payload or not a string/integer)
-- uses: clock, place, flow
local now = now_ms()
local f = cmsgpack.unpack(ARGV[2])
local window = tonumber(f[6])
fl_bind(KEYS, 8)
local cur = redis.call('HMGET', KEYS[3], 'id', 'mode')
if (cur[1] or '') ~= ARGV[4] then return {'moved', cur[1] or '', ''} end
local fx = fl_new(f, ARGV[3])
if fx == false then return {'bad_key', '', ''} end
local r = cur[1] and redis.call('HMGET', KEYS[4], 'state', 'wait')
-- a window is open while its invocation waits for the window's end ('scheduled', no 'wait'). One
-- that has ended and waits for a rate-limit slot ('wait' = 'rate', until its reserved start) is
-- closed: a debounce join would move its due time and start it before the slot (promote does not
-- charge a reservation twice), so a send opens a new window instead. A throttle join changes
-- nothing (not the due time), so it still joins such a record: its start stays the one reserved.
if r and r[1] == 'scheduled' and (cur[2] ~= 'debounce' or (r[2] or '') == '') then
  if cur[2] == 'debounce' then
    local due = now + window
    redis.call('ZADD', KEYS[2], due, cur[1])
    redis.call('HSET', KEYS[4], 'payload', ARGV[3], 'fp', f[2], 'due', due, 'updated', now)
    if fx and fx.fk then redis.call('HSET', KEYS[4], 'fk', fx.fk) end
    redis.call('PEXPIRE', KEYS[3], window + 1000)
  end
  return {'debounced', cur[1], 'scheduled'}
end
-- no window open (none yet, or its invocation left the delayed set): this send opens one
local state = place(KEYS[5], {KEYS[1], KEYS[6], KEYS[7]}, KEYS[2], ARGV[1], f, ARGV[3], now, fx)
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], 'id', f[1], 'mode', ARGV[5])
redis.call('PEXPIRE', KEYS[3], window + 1000)
return {'accepted', f[1], state}
