-- release_entry: make an invocation's pending entry reclaimable now (operator action): the entry
-- is marked idle for ages (XCLAIM to its current owner, IDLE, JUSTID: the delivery counter is not
-- bumped), so the next XAUTOCLAIM scan of any worker takes it. The record is not changed: the
-- next claim fences the holder (epoch) and counts a crash, as for a dead worker. A live owner's
-- next renewal takes the entry back.
-- KEYS[1] stream, KEYS[2] record, KEYS[3] audit stream, KEYS[4], KEYS[5] the high and low streams
-- (the entry is in the one of the record's priority)
-- ARGV[1] group, ARGV[2] idle ms to set, ARGV[3] who asked (timeline actor, audited),
-- ARGV[4] invocation id
-- timeline: 'released'
-- returns 'released' | 'already_released' | 'not_pending' | 'unknown'
-- uses: clock, timeline, enqueue
local r = redis.call('HMGET', KEYS[2], 'state', 'entry', 'tl', 'prio')
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
redis.call('XCLAIM', stream, ARGV[1], p[1][2], 0, r[2], 'IDLE', ARGV[2], 'JUSTID')
redis.call('HSET', KEYS[2], 'tl', tl_push(r[3], tl_line(now, 'released', ARGV[3])))
audit(KEYS[3], ARGV[3], 'release', ARGV[4], 'released')
return 'released'
