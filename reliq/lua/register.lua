-- register: atomically place a batch of invocations (one for Client.send, many for the gateway's
-- group commit). Idempotent per invocation: safe to re-send after a timeout.
-- KEYS[1] stream             reliq:{S}:stream
-- KEYS[2] delayed set        reliq:{S}:delayed
-- KEYS[3..n+2] invocation records  reliq:{S}:inv:<id>   (each also its idempotency record)
-- ARGV, 10 per invocation, in KEYS order: id, fingerprint (sha256 of handler + payload), service,
--   handler, payload (JSON), parent id or '', idempotency key or '', delay ms or '',
--   due time (unix ms) or '', W3C traceparent or ''
-- returns 2 values per invocation: status ('accepted' | 'previously_accepted' | 'conflict'), state
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 3, #KEYS do
  local rec, a = KEYS[i], (i - 3) * 10
  local prev = redis.call('HMGET', rec, 'fp', 'state')
  if prev[1] then
    if prev[1] ~= ARGV[a + 2] then out[#out + 1] = 'conflict' else out[#out + 1] = 'previously_accepted' end
    out[#out + 1] = prev[2]
  else
    local due = now
    if ARGV[a + 9] ~= '' then due = tonumber(ARGV[a + 9]) elseif ARGV[a + 8] ~= '' then due = now + tonumber(ARGV[a + 8]) end
    local state, entry = 'pending', ''
    if due > now then
      state = 'scheduled'
      redis.call('ZADD', KEYS[2], due, ARGV[a + 1])
    else
      entry = redis.call('XADD', KEYS[1], '*', 'i', ARGV[a + 1])
    end
    redis.call('HSET', rec, 'state', state, 'fp', ARGV[a + 2], 'service', ARGV[a + 3], 'handler', ARGV[a + 4],
      'payload', ARGV[a + 5], 'parent', ARGV[a + 6], 'key', ARGV[a + 7], 'attempt', 1, 'deliveries', 0,
      'crashes', 0, 'epoch', 0, 'entry', entry, 'created', now, 'updated', now, 'due', due,
      'trace', ARGV[a + 10])
    out[#out + 1] = 'accepted'
    out[#out + 1] = state
  end
end
return out
