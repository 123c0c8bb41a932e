-- renew: extend the leases of in-flight entries this consumer still owns (owner- and epoch-checked
-- XCLAIM IDLE 0 JUSTID, which does not bump the delivery counter).
-- KEYS[1] stream, KEYS[2..n+1] invocation records
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] lease ms, then per record: entry id, epoch
-- timeline: 'renewed', coalesced (one event per run of renewals, with a count)
-- returns one status per record: 'ok' | 'cancel' (cancel requested) | 'lost' (lease lost)
-- uses: clock, fence, timeline
local now = now_ms()
local out = {}
for i = 2, #KEYS do
  local eid, epoch = ARGV[2 * i], ARGV[2 * i + 1]
  local r = redis.call('HMGET', KEYS[i], 'epoch', 'cancel', 'state', 'tl')
  if fence(r[1], r[3], epoch, KEYS[1], ARGV[1], eid, ARGV[2]) then
    out[#out + 1] = 'lost'
  else
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, eid, 'JUSTID')
    local lease = now + tonumber(ARGV[3])
    redis.call('HSET', KEYS[i], 'lease_until', lease, 'tl', tl_renewed(r[4], now, ARGV[2], epoch, lease))
    if r[2] == '1' then out[#out + 1] = 'cancel' else out[#out + 1] = 'ok' end
  end
end
return out
