-- register: atomically place a batch of invocations (one for Client.send, many for the gateway's
-- group commit). Idempotent per invocation: safe to re-send after a timeout.
-- KEYS[1] stream             reliq:{S}:stream (priority normal)
-- KEYS[2] delayed set        reliq:{S}:delayed
-- KEYS[3], KEYS[4] the high and low streams, KEYS[5] flow specs reliq:{S}:flow (max queued;
--   'p:<handler>' the handler's default priority)
-- KEYS[6..n+5] invocation records  reliq:{S}:inv:<id>   (each also its idempotency record)
-- KEYS[n+6..] the flow keys (lib/flow.lua fl_bind; optional: without them no limit applies)
-- ARGV[1] service, ARGV[2] default max queued of the partition or '' (lib/backpressure.lua);
-- then 2 per invocation, in KEYS order:
--   a msgpack array {id, fingerprint (sha256 of handler + payload), handler, parent id or '',
--     idempotency key or '', delay ms or '', due time (unix ms) or '', W3C traceparent or '',
--     and only when set: reply target 'service/handler' or '', scheduled tick ms or '',
--     priority or '', flow key value (a callable key, computed by the registrar) or ''}
--     (one argument instead of eight: redis-py's per-argument packing dominated group commit)
--   the payload (JSON)
-- writes the 'accepted' timeline event
-- A new invocation past the partition's max queued is refused ('backpressure', state ''; nothing
-- written); a re-send of an accepted one answers as before (checked first).
-- returns 2 values per invocation: status ('accepted' | 'previously_accepted' | 'conflict' |
--   'backpressure' | 'bad_key': the handler's flow key is missing or not a string/integer,
--   nothing written), state
-- uses: clock, place, backpressure, flow
local now = now_ms()
local out = {}
local streams = {KEYS[1], KEYS[3], KEYS[4]}
local n = (#ARGV - 2) / 2
fl_bind(KEYS, n + 6)
local free
local prio = {}
for i = 6, n + 5 do
  local rec, a = KEYS[i], (i - 6) * 2 + 3
  local f = cmsgpack.unpack(ARGV[a])
  local prev = redis.call('HMGET', rec, 'fp', 'state')
  if prev[1] then
    if prev[1] ~= f[2] then out[#out + 1] = 'conflict' else out[#out + 1] = 'previously_accepted' end
    out[#out + 1] = prev[2]
  elseif prev[2] then
    -- a tombstone: a parent's cancel reached this child before it was registered (cancel.lua)
    out[#out + 1] = 'previously_accepted'
    out[#out + 1] = prev[2]
  else
    local fx = fl_new(f, ARGV[a + 1])
    if fx == false then
      out[#out + 1] = 'bad_key'
      out[#out + 1] = ''
    else
      -- no priority given: the handler's default, published by its workers ('' or absent: normal)
      -- (read once per handler and call: a group commit holds many of one handler)
      if (f[11] or '') == '' then
        local d = prio[f[3]]
        if d == nil then
          d = redis.call('HGET', KEYS[5], 'p:' .. f[3]) or ''
          prio[f[3]] = d
        end
        f[11] = d
      end
      free = free or room(KEYS[5], streams, KEYS[2], ARGV[2])
      if free <= 0 then
        out[#out + 1] = 'backpressure'
        out[#out + 1] = ''
      else
        free = free - 1
        out[#out + 1] = 'accepted'
        out[#out + 1] = place(rec, streams, KEYS[2], ARGV[1], f, ARGV[a + 1], now, fx)
      end
    end
  end
end
return out
