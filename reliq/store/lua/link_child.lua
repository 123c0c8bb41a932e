-- link_child: list a child invocation under its parent, before the child is registered
-- (epoch-fenced, idempotent). A parent whose cancel was requested (and not yet seen by its
-- handler) starts no more children; a replay that calls another child at the same position than
-- the journal recorded (another id, or another handler) is nondeterministic.
-- KEYS[1] parent record, KEYS[2] parent's children set, KEYS[3] parent's inbox
-- ARGV[1] parent epoch, ARGV[2] child id, ARGV[3] call order, ARGV[4] child handler name
-- (journaled in the inbox as 'n:<order>'), ARGV[5] the fingerprint of handler and payload
-- (optional; 'f:<order>': a replay that sends another payload is nondeterministic even after the
-- child finished, when nothing re-sends it)
-- returns 'linked' (or already linked) | 'fenced' | 'cancelled' | what the journal holds at that
-- position when it is another call (a child id, or 'handler <name>')
-- uses: fence
local r = redis.call('HMGET', KEYS[1], 'epoch', 'state', 'cancel')
if fence(r[1], r[2], ARGV[1]) then return 'fenced' end
local at = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[3], ARGV[3])
if #at > 0 and at[1] ~= ARGV[2] then return at[1] end
local name = redis.call('HGET', KEYS[3], 'n:' .. ARGV[3])
if name and name ~= ARGV[4] then return 'handler ' .. name end
if r[3] == '1' and #at == 0 then return 'cancelled' end
redis.call('ZADD', KEYS[2], 'NX', tonumber(ARGV[3]), ARGV[2])
redis.call('HSET', KEYS[3], 'n:' .. ARGV[3], ARGV[4])
if ARGV[5] and ARGV[5] ~= '' then redis.call('HSETNX', KEYS[3], 'f:' .. ARGV[3], ARGV[5]) end
-- complete expires the children and inbox keys only when these are set
redis.call('HSET', KEYS[1], 'kids', 1, 'ibx', 1)
return 'linked'
