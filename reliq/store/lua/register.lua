-- register: atomically place a batch of invocations (one for Client.send, many for the gateway's
-- group commit). Idempotent per invocation: safe to re-send after a timeout.
-- KEYS[1] stream             reliq:{S}:stream
-- KEYS[2] delayed set        reliq:{S}:delayed
-- KEYS[3..n+2] invocation records  reliq:{S}:inv:<id>   (each also its idempotency record)
-- ARGV[1] service; then 2 per invocation, in KEYS order:
--   a msgpack array {id, fingerprint (sha256 of handler + payload), handler, parent id or '',
--     idempotency key or '', delay ms or '', due time (unix ms) or '', W3C traceparent or ''}
--     (one argument instead of eight: redis-py's per-argument packing dominated group commit)
--   the payload (JSON)
-- writes the 'accepted' timeline event
-- returns 2 values per invocation: status ('accepted' | 'previously_accepted' | 'conflict'), state
-- uses: clock, timeline
local now = now_ms()
local out = {}
for i = 3, #KEYS do
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
    local due = now
    if f[7] ~= '' then due = tonumber(f[7]) elseif f[6] ~= '' then due = now + tonumber(f[6]) end
    local state, entry = 'pending', ''
    if due > now then
      state = 'scheduled'
      redis.call('ZADD', KEYS[2], due, f[1])
    else
      entry = redis.call('XADD', KEYS[1], '*', 'i', f[1])
    end
    redis.call('HSET', rec, 'state', state, 'fp', f[2], 'service', ARGV[1], 'handler', f[3],
      'payload', ARGV[a + 1], 'parent', f[4], 'key', f[5], 'attempt', 1, 'deliveries', 0,
      'crashes', 0, 'epoch', 0, 'entry', entry, 'created', now, 'updated', now, 'due', due,
      'trace', f[8], 'tl', tl_line(now, 'accepted', '', 0, state, state == 'scheduled' and due or 0))
    out[#out + 1] = 'accepted'
    out[#out + 1] = state
  end
end
return out
