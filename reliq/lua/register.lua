-- register: atomically place one invocation (idempotent; safe to re-send after a timeout).
-- KEYS[1] invocation record  reliq:{S}:inv:<id>   (also the idempotency record)
-- KEYS[2] stream             reliq:{S}:stream
-- KEYS[3] delayed set        reliq:{S}:delayed
-- ARGV[1] id, ARGV[2] fingerprint (sha256 of handler + payload), ARGV[3] service, ARGV[4] handler,
-- ARGV[5] payload (JSON), ARGV[6] parent id or '', ARGV[7] idempotency key or '',
-- ARGV[8] delay ms or '', ARGV[9] due time (unix ms) or '', ARGV[10] W3C traceparent or ''
-- returns {status, state}: status 'accepted' | 'previously_accepted' | 'conflict'
local prev = redis.call('HMGET', KEYS[1], 'fp', 'state')
if prev[1] then
  if prev[1] ~= ARGV[2] then return {'conflict', prev[2]} end
  return {'previously_accepted', prev[2]}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = now
if ARGV[9] ~= '' then due = tonumber(ARGV[9]) elseif ARGV[8] ~= '' then due = now + tonumber(ARGV[8]) end
local state, entry = 'pending', ''
if due > now then
  state = 'scheduled'
  redis.call('ZADD', KEYS[3], due, ARGV[1])
else
  entry = redis.call('XADD', KEYS[2], '*', 'i', ARGV[1])
end
redis.call('HSET', KEYS[1], 'state', state, 'fp', ARGV[2], 'service', ARGV[3], 'handler', ARGV[4],
  'payload', ARGV[5], 'parent', ARGV[6], 'key', ARGV[7], 'attempt', 1, 'deliveries', 0, 'crashes', 0,
  'epoch', 0, 'entry', entry, 'created', now, 'updated', now, 'due', due, 'trace', ARGV[10] or '')
return {'accepted', state}
