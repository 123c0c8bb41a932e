-- cron_set: pause, resume or delete a schedule. Pausing takes it out of the tick loop's zset;
-- resuming starts it again at the server's now (ticks that fell in the pause are not missed
-- ticks, they never run); deleting removes it (a schedule declared in code comes back when a
-- worker that declares it starts).
-- KEYS[1] schedules, KEYS[2] ticks, KEYS[3] cron (all partition 0 of the service)
-- ARGV[1] action ('pause' | 'resume' | 'delete'), ARGV[2] name
-- returns 'paused' | 'resumed' | 'deleted' | 'unknown' (repeating an action answers the same)
-- uses: clock
local name = ARGV[2]
if redis.call('HEXISTS', KEYS[1], name) == 0 then return 'unknown' end
local now = now_ms()
if ARGV[1] == 'pause' then
  redis.call('HSETNX', KEYS[2], name .. ':p', now)
  redis.call('ZREM', KEYS[3], name)
  return 'paused'
elseif ARGV[1] == 'delete' then
  redis.call('HDEL', KEYS[1], name)
  redis.call('HDEL', KEYS[2], name, name .. ':p', name .. ':i')
  redis.call('ZREM', KEYS[3], name)
  return 'deleted'
end
-- resume
if redis.call('HDEL', KEYS[2], name .. ':p') == 1 then redis.call('HSET', KEYS[2], name, now) end
redis.call('ZADD', KEYS[3], 'NX', now, name)
return 'resumed'
