-- claim: start a read batch. For each entry: skip work that is finished (ack + delete the entry),
-- otherwise bump the lease epoch, record the owner and lease, count deliveries and crashes.
-- KEYS[1] stream, KEYS[2..n+1] invocation records (one per entry, same order as the entry ids)
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] lease ms, ARGV[4] claim token (unique per call: a
-- re-send of the same call after a lost reply returns the same claims without bumping again),
-- ARGV[5..n+4] entry ids
-- timeline: 'claimed' (or 'reclaimed' when the record was still running) per new claim
-- returns 10 values per entry: status ('run' | 'cancel' | 'skip'), epoch, handler, payload,
--   attempt, crashes, parent, idempotency key, deliveries, traceparent
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = now + tonumber(ARGV[3])
local out = {}
for i = 2, #KEYS do
  local rec, eid = KEYS[i], ARGV[i + 3]
  local r = redis.call('HMGET', rec, 'state', 'entry', 'cancel', 'claim', 'tl')
  local st = r[1]
  if st == 'running' and r[4] == ARGV[4] and r[2] == eid then
    local v = redis.call('HMGET', rec, 'epoch', 'handler', 'payload', 'attempt', 'crashes', 'parent', 'key',
      'deliveries', 'trace')
    if r[3] == '1' then out[#out + 1] = 'cancel' else out[#out + 1] = 'run' end
    for j = 1, 9 do out[#out + 1] = v[j] or '' end
  elseif (not st) or st == 'succeeded' or st == 'failed' or st == 'cancelled' or r[2] ~= eid then
    -- unknown, finished, or a stale duplicate entry: never run it again
    redis.call('XACK', KEYS[1], ARGV[1], eid)
    redis.call('XDEL', KEYS[1], eid)
    for _ = 1, 10 do out[#out + 1] = '' end
    out[#out - 9] = 'skip'
  else
    local event = 'claimed'
    if st == 'running' then
      redis.call('HINCRBY', rec, 'crashes', 1)
      event = 'reclaimed'
    end
    local epoch = redis.call('HINCRBY', rec, 'epoch', 1)
    local deliveries = redis.call('HINCRBY', rec, 'deliveries', 1)
    redis.call('HSET', rec, 'state', 'running', 'owner', ARGV[2], 'lease_until', lease,
      'started', now, 'updated', now, 'claim', ARGV[4], 'tl', tl_push(r[5], tl_line(now, event, ARGV[2], epoch)))
    local v = redis.call('HMGET', rec, 'handler', 'payload', 'attempt', 'crashes', 'parent', 'key', 'trace')
    local status = 'run'
    if r[3] == '1' then status = 'cancel' end
    out[#out + 1] = status
    out[#out + 1] = epoch
    for j = 1, 6 do out[#out + 1] = v[j] end
    out[#out + 1] = deliveries
    out[#out + 1] = v[7] or ''
  end
end
return out
