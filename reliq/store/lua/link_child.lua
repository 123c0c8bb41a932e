-- link_child: list a child invocation under its parent (epoch-fenced, idempotent).
-- KEYS[1] parent record, KEYS[2] parent's children set
-- ARGV[1] parent epoch, ARGV[2] child id, ARGV[3] call order
-- returns 1 when linked (or already linked), 0 when fenced
-- uses: fence
local r = redis.call('HMGET', KEYS[1], 'epoch', 'state')
if fence(r[1], r[2], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[2], 'NX', tonumber(ARGV[3]), ARGV[2])
redis.call('HSET', KEYS[1], 'kids', 1)  -- complete expires the children key only when this is set
return 1
