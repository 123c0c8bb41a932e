-- cron_save: store a schedule. A new one starts at the server's now (its first tick is the
-- first one after it); an active one is looked at by the tick loop at once.
-- KEYS[1] schedules, KEYS[2] ticks, KEYS[3] cron (all partition 0 of the service)
-- ARGV[1] name, ARGV[2] the schedule's JSON, ARGV[3] mode: 'declare' (a worker publishing an
--   @svc.cron: the code's version wins) | 'create' (Client: a different schedule by that name
--   is refused)
-- returns 'created' | 'updated' | 'unchanged' | 'exists'
-- uses: clock
local name, spec = ARGV[1], ARGV[2]
local old = redis.call('HGET', KEYS[1], name)
if old == spec then
  if redis.call('HEXISTS', KEYS[2], name .. ':p') == 0 then
    redis.call('ZADD', KEYS[3], 'NX', now_ms(), name)
  end
  return 'unchanged'
end
if old and ARGV[3] == 'create' then return 'exists' end
local now = now_ms()
redis.call('HSET', KEYS[1], name, spec)
redis.call('HSETNX', KEYS[2], name, now)
if redis.call('HEXISTS', KEYS[2], name .. ':p') == 0 then redis.call('ZADD', KEYS[3], now, name) end
if old then return 'updated' end
return 'created'
