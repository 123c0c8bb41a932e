-- set_limits: an operator's live change of one handler's limits in one partition: write (or
-- delete) the override field '<handler>!' of the spec hash, then admit the waiters the new limit
-- lets in (a raised or lifted limit takes effect now, not at the next release of each key).
-- KEYS[1] audit stream, KEYS[2] stream, KEYS[3..10] the flow keys (lib/flow.lua)
-- ARGV[1] handler, ARGV[2] the override JSON ('' = clear it: the code's spec applies again),
-- ARGV[3] who asked (audited; '' = library call, not audited)
-- returns the number of waiters admitted
-- uses: flow, timeline
fl_bind(KEYS, 3)
local handler = ARGV[1]
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[3], handler .. '!')
else
  redis.call('HSET', KEYS[3], handler .. '!', ARGV[2])
end
audit(KEYS[1], ARGV[3], ARGV[2] == '' and 'limits-clear' or 'limits-set', handler, ARGV[2])
local before = redis.call('ZCARD', FLOW.wait)
-- the handler's keys that have waiters, one after the other from the wait set (lex order: a
-- member starts with its key, 'handler NUL value', then NUL)
local from = '[' .. handler .. '\0'
while true do
  local m = redis.call('ZRANGEBYLEX', FLOW.wait, from, '(' .. handler .. '\1', 'LIMIT', 0, 1)[1]
  if not m then break end
  local fk = string.match(m, '^([^%z]*%z[^%z]*)')
  fl_admit(fk)
  from = '[' .. fk .. '\1'
end
return before - redis.call('ZCARD', FLOW.wait)
