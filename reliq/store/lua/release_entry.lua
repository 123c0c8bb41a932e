-- release_entry: make an invocation's pending entry reclaimable now (operator action): the entry
-- is marked idle for ages (XCLAIM to its current owner, IDLE, JUSTID: the delivery counter is not
-- bumped), so the next XAUTOCLAIM scan of any worker takes it. The record is not changed: the
-- next claim fences the holder (epoch) and counts a crash, as for a dead worker.
-- A live holder is refused ('owner_alive', nothing written, not audited): a record 'running'
-- with lease_until in the future whose holder ('owner') has a heartbeat. The heartbeat key is
-- service-wide (slot {S}), not in this partition's slot, so the caller reads it first and passes
-- the holder it checked and what it found; a holder other than the one checked (the entry
-- changed hands in between) counts as alive. ARGV[7] '1' (force) skips the check, for a holder
-- that beats but is wedged: whichever comes first then wins, its renewal (takes the entry back)
-- or a reclaim scan (a new epoch: the holder's next renewal cancels its handler).
-- KEYS[1] stream, KEYS[2] record, KEYS[3] audit stream, KEYS[4], KEYS[5] the high and low streams
-- (the entry is in the one of the record's priority)
-- ARGV[1] group, ARGV[2] idle ms to set, ARGV[3] who asked (timeline actor, audited),
-- ARGV[4] invocation id, ARGV[5] the holder whose heartbeat the caller checked ('' = none),
-- ARGV[6] '1' when that heartbeat exists, ARGV[7] '1' = force
-- timeline: 'released'
-- returns 'released' | 'already_released' | 'not_pending' | 'owner_alive' | 'unknown'
-- uses: clock, timeline, enqueue
local r = redis.call('HMGET', KEYS[2], 'state', 'entry', 'tl', 'prio', 'owner', 'lease_until')
local stream = stream_of({KEYS[1], KEYS[4], KEYS[5]}, r[4])
if not r[1] then return 'unknown' end
local p = {}
if r[2] and r[2] ~= '' then p = redis.call('XPENDING', stream, ARGV[1], r[2], r[2], 1) end
if #p == 0 then
  audit(KEYS[3], ARGV[3], 'release', ARGV[4], 'not_pending')
  return 'not_pending'
end
if tonumber(p[1][3]) >= tonumber(ARGV[2]) then
  audit(KEYS[3], ARGV[3], 'release', ARGV[4], 'already_released')
  return 'already_released'
end
local now = now_ms()
if ARGV[7] ~= '1' and r[1] == 'running' and (tonumber(r[6]) or 0) > now
    and ((r[5] or '') ~= ARGV[5] or ARGV[6] == '1') then
  return 'owner_alive'
end
redis.call('XCLAIM', stream, ARGV[1], p[1][2], 0, r[2], 'IDLE', ARGV[2], 'JUSTID')
redis.call('HSET', KEYS[2], 'tl', tl_push(r[3], tl_line(now, 'released', ARGV[3])))
audit(KEYS[3], ARGV[3], 'release', ARGV[4], 'released')
return 'released'
