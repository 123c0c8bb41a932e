-- link_child: list a child invocation under its parent, before the child is registered
-- (epoch-fenced, idempotent). A parent whose cancel was requested (and not yet seen by its
-- handler) starts no more children; a replay that calls another child at the same position than
-- the journal recorded is nondeterministic.
-- KEYS[1] parent record, KEYS[2] parent's children set
-- ARGV[1] parent epoch, ARGV[2] child id, ARGV[3] call order
-- returns 'linked' (or already linked) | 'fenced' | 'cancelled' | the child id journaled at that
-- position when it is another one
-- uses: fence
local r = redis.call('HMGET', KEYS[1], 'epoch', 'state', 'cancel')
if fence(r[1], r[2], ARGV[1]) then return 'fenced' end
local at = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[3], ARGV[3])
if #at > 0 and at[1] ~= ARGV[2] then return at[1] end
if r[3] == '1' and #at == 0 then return 'cancelled' end
redis.call('ZADD', KEYS[2], 'NX', tonumber(ARGV[3]), ARGV[2])
redis.call('HSET', KEYS[1], 'kids', 1)  -- complete expires the children key only when this is set
return 'linked'
