-- discard: move a parked invocation to the service's archive (operator action). The record keeps
-- its retention TTL, so it stays inspectable and redrivable (redrive.lua) until it expires.
-- KEYS[1] record, KEYS[2] parked set, KEYS[3] archive set, KEYS[4] audit stream
-- ARGV[1] invocation id, ARGV[2] who asked (timeline actor, audited), ARGV[3] retention ms
-- (archive members older than that are trimmed)
-- timeline: 'discarded'. An id whose record expired is removed from the parked set.
-- returns 'discarded' | 'not_parked' (not failed, or already archived) | 'unknown'
-- uses: clock, timeline
local r = redis.call('HMGET', KEYS[1], 'state', 'tl')
if not r[1] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 'unknown'
end
if r[1] ~= 'failed' or redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then
  audit(KEYS[4], ARGV[2], 'discard', ARGV[1], 'not_parked')
  return 'not_parked'
end
local now = now_ms()
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'discarded', now, 'tl', tl_push(r[2], tl_line(now, 'discarded', ARGV[2])))
audit(KEYS[4], ARGV[2], 'discard', ARGV[1], 'discarded')
return 'discarded'
