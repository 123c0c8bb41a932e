-- set_layout: spread new invocations over ARGV[1] partitions from now on. Atomic so that `high`
-- (partitions that may hold work, the workers' and views' range) only ever grows: two writers
-- racing could otherwise lower it and strand the work placed on the partitions above it.
-- KEYS[1] layout hash
-- ARGV[1] partitions
-- returns {p, high, prev, changed}
-- uses: clock
local r = redis.call('HMGET', KEYS[1], 'p', 'high', 'prev', 'changed')
local cur = tonumber(r[1]) or 1
local high = tonumber(r[2]) or 1
local want = tonumber(ARGV[1])
if cur == want then
  return {cur, math.max(high, cur), tonumber(r[3]) or 0, tonumber(r[4]) or 0}
end
local now = now_ms()
high = math.max(high, want, cur)
redis.call('HSET', KEYS[1], 'p', want, 'high', high, 'prev', cur, 'changed', now)
return {want, high, cur, now}
