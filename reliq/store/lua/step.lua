-- step: journal the result of one ctx.step (epoch-fenced; first write wins).
-- KEYS[1] record, KEYS[2] steps
-- ARGV[1] epoch, ARGV[2] step name, ARGV[3] result (JSON)
-- a new journal entry also sets the record's 'step' (last step) and a 'step' timeline event
-- returns 1 when stored (or already stored), 0 when fenced
-- uses: clock, fence, timeline
local r = redis.call('HMGET', KEYS[1], 'epoch', 'state', 'owner', 'tl')
if fence(r[1], r[2], ARGV[1]) then return 0 end
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 1 then
  local now = now_ms()
  local name = string.sub(ARGV[2], 1, 200)
  redis.call('HSET', KEYS[1], 'step', name, 'tl', tl_push(r[4], tl_line(now, 'step', r[3], ARGV[1], name)))
end
return 1
