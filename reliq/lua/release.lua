-- release: give back entries this consumer holds without finishing them (graceful shutdown):
-- the record returns to 'pending' (not counted as a crash) and the entry becomes reclaimable now.
-- KEYS[1] stream, KEYS[2..n+1] invocation records
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] idle ms to set, then per record: entry id, epoch
-- returns the number of entries released
local released = 0
for i = 2, #KEYS do
  local eid, epoch = ARGV[2 * i], ARGV[2 * i + 1]
  local r = redis.call('HMGET', KEYS[i], 'epoch', 'state')
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], eid, eid, 1)
  if r[1] == epoch and r[2] == 'running' and #p == 1 and p[1][2] == ARGV[2] then
    redis.call('HSET', KEYS[i], 'state', 'pending', 'owner', '', 'lease_until', '')
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, eid, 'IDLE', ARGV[3], 'JUSTID')
    released = released + 1
  end
end
return released
