-- complete: settle a batch of finished attempts in one call. Epoch-fenced: a worker that lost its
-- lease cannot commit or ack. Writes the outcome, starts retention, acks and deletes the entry.
-- KEYS[1] stream, KEYS[2] per-minute counters, then per invocation 3 keys: record, steps, children
-- ARGV[1] group, ARGV[2] retention ms, then per invocation 4 values:
--   entry id, epoch, final state ('succeeded' | 'cancelled'), result (JSON or '')
-- timeline: the final state; counters: succeeded / cancelled of this minute
-- returns one status per invocation: 'ok' | 'fenced' | 'noop' (already settled for this epoch)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local out = {}
local counts = {succeeded = 0, cancelled = 0}
local acked = {}
local n = (#KEYS - 2) / 3
for i = 0, n - 1 do
  local rec, steps, children = KEYS[3 + 3 * i], KEYS[4 + 3 * i], KEYS[5 + 3 * i]
  local eid, epoch, state, result = ARGV[3 + 4 * i], ARGV[4 + 4 * i], ARGV[5 + 4 * i], ARGV[6 + 4 * i]
  -- 'step' is set by the step script, 'kids' by link_child: only then do those keys exist
  local r = redis.call('HMGET', rec, 'epoch', 'state', 'owner', 'tl', 'step', 'kids')
  if r[1] ~= epoch then
    out[#out + 1] = 'fenced'
  elseif r[2] ~= 'running' then
    out[#out + 1] = 'noop'
  else
    redis.call('HSET', rec, 'state', state, 'result', result, 'finished', now, 'updated', now,
      'owner', '', 'lease_until', '', 'entry', '', 'tl', tl_push(r[4], tl_line(now, state, r[3], epoch)))
    redis.call('PEXPIRE', rec, ttl)
    if r[5] then redis.call('PEXPIRE', steps, ttl) end
    if r[6] then redis.call('PEXPIRE', children, ttl) end
    acked[#acked + 1] = eid
    counts[state] = (counts[state] or 0) + 1
    out[#out + 1] = 'ok'
  end
end
-- one XACK and one XDEL for the whole batch (in chunks: Lua's unpack has a stack limit)
for j = 1, #acked, 1000 do
  local part = {unpack(acked, j, math.min(j + 999, #acked))}
  redis.call('XACK', KEYS[1], ARGV[1], unpack(part))
  redis.call('XDEL', KEYS[1], unpack(part))
end
count_minute(KEYS[2], now, 'succeeded', counts.succeeded)
count_minute(KEYS[2], now, 'cancelled', counts.cancelled)
return out
