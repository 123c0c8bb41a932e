-- release: give back entries this consumer holds without finishing them (graceful shutdown):
-- the record returns to 'pending' (not counted as a crash) and the entry becomes reclaimable now.
-- KEYS[1] stream, KEYS[2..n+1] invocation records
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] idle ms to set, then per record: entry id, epoch
-- timeline: 'released'
-- returns the number of entries released
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local released = 0
for i = 2, #KEYS do
  local eid, epoch = ARGV[2 * i], ARGV[2 * i + 1]
  local r = redis.call('HMGET', KEYS[i], 'epoch', 'state', 'tl')
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], eid, eid, 1)
  if r[1] == epoch and r[2] == 'running' and #p == 1 and p[1][2] == ARGV[2] then
    redis.call('HSET', KEYS[i], 'state', 'pending', 'owner', '', 'lease_until', '',
      'tl', tl_push(r[3], tl_line(now, 'released', ARGV[2], epoch)))
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, eid, 'IDLE', ARGV[3], 'JUSTID')
    released = released + 1
  end
end
return released
