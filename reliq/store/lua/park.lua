-- park: fail an invocation for good (attempts exhausted, terminal error, crash loop); epoch-fenced.
-- It stays listed in the parked set (dead letters) and its record expires after the retention.
-- KEYS[1] record, KEYS[2] steps, KEYS[3] children, KEYS[4] stream, KEYS[5] parked set,
-- KEYS[6] per-minute counters
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] epoch, ARGV[4] reason, ARGV[5] error (JSON),
-- ARGV[6] invocation id, ARGV[7] retention ms
-- timeline: 'parked' (reason); counters: failed
-- returns 'ok' | 'fenced' | 'noop'
local r = redis.call('HMGET', KEYS[1], 'epoch', 'state', 'owner', 'tl')
if r[1] ~= ARGV[3] then return 'fenced' end
if r[2] ~= 'running' then return 'noop' end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[7])
redis.call('HSET', KEYS[1], 'state', 'failed', 'reason', ARGV[4], 'error', ARGV[5], 'finished', now,
  'updated', now, 'owner', '', 'lease_until', '', 'entry', '',
  'tl', tl_push(r[4], tl_line(now, 'parked', r[3], ARGV[3], ARGV[4])))
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
redis.call('ZADD', KEYS[5], now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - ttl)
redis.call('XACK', KEYS[4], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[4], ARGV[2])
count_minute(KEYS[6], now, 'failed', 1)
return 'ok'
