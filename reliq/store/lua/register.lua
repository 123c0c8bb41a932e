-- register: atomically place a batch of invocations (one for Client.send, many for the gateway's
-- group commit). Idempotent per invocation: safe to re-send after a timeout.
-- KEYS[1] stream             reliq:{S}:stream (priority normal)
-- KEYS[2] delayed set        reliq:{S}:delayed
-- KEYS[3], KEYS[4] the high and low streams, KEYS[5] flow specs reliq:{S}:flow (max queued;
--   'p:<handler>' the handler's default priority)
-- KEYS[6..n+5] invocation records  reliq:{S}:inv:<id>   (each also its idempotency record)
-- KEYS[n+6..] the flow keys (lib/flow.lua fl_bind; optional: without them no limit applies)
-- ARGV[1] service, ARGV[2] default max queued of the partition or '' (lib/backpressure.lua),
-- ARGV[3] the batch as one msgpack array, 2 values per invocation, in KEYS order:
--   its array {id, fingerprint (sha256 of handler + payload), handler, parent id or '',
--     idempotency key or '', delay ms or '', due time (unix ms) or '', W3C traceparent or '',
--     and only when set: reply target 'service/handler' or '', scheduled tick ms or '',
--     priority or '', flow key value (a callable key, computed by the registrar) or ''}
--   and its payload (JSON); or, for invocations of one handler with the same options
--   (send_many), 6 columns: {the array they share, ids, fingerprints, idempotency keys, flow key
--   values, payloads} (keys and flow keys: [] when none; each item's are set in the shared array)
--   (one argument for the batch: redis-py's and the server's per-argument work dominated group
--   commit; one unpack instead of one per invocation)
-- writes the 'accepted' timeline event
-- A new invocation past the partition's max queued is refused ('backpressure', state ''; nothing
-- written), except a schedule's tick; a re-send of an accepted one answers as before (checked first).
-- returns 2 values per invocation: status ('accepted' | 'previously_accepted' | 'conflict' |
--   'backpressure' | 'bad_key': the handler's flow key is missing or not a string/integer,
--   nothing written), state
-- uses: clock, place, backpressure, flow
local now = now_ms()
local out = {}
local streams = {KEYS[1], KEYS[3], KEYS[4]}
local batch = cmsgpack.unpack(ARGV[3])
-- columns (send_many): {f shared by every item, ids, fingerprints, keys, flow keys, payloads}
local cols = type(batch[2]) == 'table'
local n = cols and #batch[2] or #batch / 2
fl_bind(KEYS, n + 6)
local free
local prio = {}
local NONE = {}
for i = 1, n do
  local rec, f, payload = KEYS[i + 5], nil, nil
  if cols then  -- the shared array, this item's fields set (place reads it during this item only)
    f, payload = batch[1], batch[6][i]
    f[1], f[2], f[5], f[12] = batch[2][i], batch[3][i], batch[4][i] or '', batch[5][i] or ''
  else
    f, payload = batch[2 * i - 1], batch[2 * i]
  end
  -- a new record (the common case) costs one EXISTS; a re-send reads what it holds
  local prev = NONE
  if redis.call('EXISTS', rec) == 1 then prev = redis.call('HMGET', rec, 'fp', 'state') end
  if prev[1] then
    if prev[1] ~= f[2] then out[2 * i - 1] = 'conflict' else out[2 * i - 1] = 'previously_accepted' end
    out[2 * i] = prev[2]
  elseif prev[2] then
    -- a tombstone: a parent's cancel reached this child before it was registered (cancel.lua)
    out[2 * i - 1] = 'previously_accepted'
    out[2 * i] = prev[2]
  else
    local fx = fl_new(f, payload)
    if fx == false then
      out[2 * i - 1] = 'bad_key'
      out[2 * i] = ''
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
      -- a schedule's tick (a multi-partition service's, placed like a send: worker/cron.py) is
      -- not refused: as in cron_tick.lua, time is not a producer to push back on
      local tick = (f[10] or '') ~= ''
      if not tick then free = free or room(KEYS[5], streams, KEYS[2], ARGV[2], FLOW and FLOW.wait) end
      if not tick and free <= 0 then
        out[2 * i - 1] = 'backpressure'
        out[2 * i] = ''
      else
        if not tick then free = free - 1 end
        out[2 * i - 1] = 'accepted'
        out[2 * i] = place(rec, streams, KEYS[2], ARGV[1], f, payload, now, fx)
      end
    end
  end
end
return out
