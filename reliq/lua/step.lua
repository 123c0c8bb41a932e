-- step: journal the result of one ctx.step (epoch-fenced; first write wins).
-- KEYS[1] record, KEYS[2] steps
-- ARGV[1] epoch, ARGV[2] step name, ARGV[3] result (JSON)
-- returns 1 when stored (or already stored), 0 when fenced
local r = redis.call('HMGET', KEYS[1], 'epoch', 'state')
if r[1] ~= ARGV[1] or r[2] ~= 'running' then return 0 end
redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3])
return 1
