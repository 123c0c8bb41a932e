-- release: give back entries this consumer holds without finishing them (graceful shutdown):
-- the record returns to 'pending' (not counted as a crash) and the entry becomes reclaimable now.
-- KEYS[1] stream, KEYS[2..n+1] invocation records
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] idle ms to set, then per record: entry id, epoch
-- timeline: 'released'
-- returns the number of entries released
-- uses: clock, fence, timeline
local now = now_ms()
local released = 0
for i = 2, #KEYS do
  local eid, epoch = ARGV[2 * i], ARGV[2 * i + 1]
  local r = redis.call('HMGET', KEYS[i], 'epoch', 'state', 'tl')
  if not fence(r[1], r[2], epoch, KEYS[1], ARGV[1], eid, ARGV[2]) then
    redis.call('HSET', KEYS[i], 'state', 'pending', 'owner', '', 'lease_until', '',
      'tl', tl_push(r[3], tl_line(now, 'released', ARGV[2], epoch)))
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, eid, 'IDLE', ARGV[3], 'JUSTID')
    released = released + 1
  end
end
return released
