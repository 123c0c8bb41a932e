-- complete: settle a batch of finished attempts in one call. Epoch-fenced: a worker that lost its
-- lease cannot commit or ack. Writes the outcome, starts retention, acks and deletes the entry.
-- KEYS[1] stream, KEYS[2] per-minute counters, then per invocation 3 keys: record, steps, children
-- ARGV[1] group, ARGV[2] retention ms, then per invocation 4 values:
--   entry id, epoch, final state ('succeeded' | 'cancelled'), result (JSON or '')
-- timeline: the final state; counters: succeeded / cancelled of this minute
-- returns one status per invocation: 'ok' | 'fenced' | 'noop' (already settled for this epoch)
-- uses: clock, fence, ack, timeline, finish
local now = now_ms()
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
  local refused = fence(r[1], r[2], epoch)
  if refused then
    out[#out + 1] = refused
  else
    finish(rec, {r[5] and steps, r[6] and children}, ttl, now, state, {'result', result}, true, r[4],
      tl_line(now, state, r[3], epoch))
    acked[#acked + 1] = eid
    counts[state] = (counts[state] or 0) + 1
    out[#out + 1] = 'ok'
  end
end
ack(KEYS[1], ARGV[1], acked)  -- one XACK and one XDEL for the whole batch
count_minute(KEYS[2], now, 'succeeded', counts.succeeded)
count_minute(KEYS[2], now, 'cancelled', counts.cancelled)
return out
