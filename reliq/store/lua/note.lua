-- note: journal a value of the running attempt in the inbox (epoch-fenced; the first value of a
-- field stands): a durable timer's due time ('d:<n>': ARGV[3] is the delay in ms, the due time is
-- server now + delay), which of two waits won ('x:<n>'), where a cancel was shown to the handler
-- ('k': a requested cancel becomes seen, '2', so its compensation may start children;
-- reliq/worker/cancelpoint.py) or a child's cancel shown as such ('v:c:<child>').
-- KEYS[1] record, KEYS[2] inbox
-- ARGV[1] epoch, ARGV[2] field, ARGV[3] value (or delay ms for 'd:' fields)
-- returns {the field's value, server now ms}, or {'', 0} when fenced
-- uses: clock, fence
local r = redis.call('HMGET', KEYS[1], 'epoch', 'state', 'cancel')
if fence(r[1], r[2], ARGV[1]) then return {'', 0} end
local now = now_ms()
local v = ARGV[3]
if string.sub(ARGV[2], 1, 2) == 'd:' then v = string.format('%d', now + tonumber(ARGV[3])) end
if ARGV[2] == 'k' and r[3] == '1' then redis.call('HSET', KEYS[1], 'cancel', '2') end
redis.call('HSETNX', KEYS[2], ARGV[2], v)
redis.call('HSET', KEYS[1], 'ibx', 1)
return {redis.call('HGET', KEYS[2], ARGV[2]), now}
