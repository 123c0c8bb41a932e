-- register: atomically place a batch of invocations (one for Client.send, many for the gateway's
-- group commit). Idempotent per invocation: safe to re-send after a timeout.
-- KEYS[1] stream             reliq:{S}:stream
-- KEYS[2] delayed set        reliq:{S}:delayed
-- KEYS[3..n+2] invocation records  reliq:{S}:inv:<id>   (each also its idempotency record)
-- KEYS[n+3..n+8] the flow keys (lib/flow.lua fl_bind; optional: without them no limit applies)
-- ARGV[1] service; then 2 per invocation, in KEYS order:
--   a msgpack array {id, fingerprint (sha256 of handler + payload), handler, parent id or '',
--     idempotency key or '', delay ms or '', due time (unix ms) or '', W3C traceparent or '',
--     and only when set: reply target 'service/handler' or '', scheduled tick ms or '',
--     priority or '', flow key value (a callable key, computed by the registrar) or ''}
--     (one argument instead of eight: redis-py's per-argument packing dominated group commit)
--   the payload (JSON)
-- writes the 'accepted' timeline event
-- returns 2 values per invocation: status ('accepted' | 'previously_accepted' | 'conflict' |
--   'bad_key': the handler's flow key is missing or not a string/integer, nothing written), state
-- uses: clock, place, flow
local now = now_ms()
local out = {}
local n = (#ARGV - 1) / 2
fl_bind(KEYS, n + 3, {KEYS[1]})
for i = 3, n + 2 do
  local rec, a = KEYS[i], (i - 3) * 2 + 2
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
      out[#out + 1] = 'accepted'
      out[#out + 1] = place(rec, KEYS[1], KEYS[2], ARGV[1], f, ARGV[a + 1], now, fx)
    end
  end
end
return out
