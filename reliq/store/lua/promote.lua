-- promote: move due invocations from the delayed set to the stream. Safe with many workers running
-- it: an id is promoted only by the caller whose ZREM removed it.
-- KEYS[1] delayed set, KEYS[2] stream, KEYS[3..n+2] invocation records
-- ARGV[1..n] invocation ids (same order as the records)
-- timeline: 'promoted'
-- returns the number of invocations promoted
-- uses: clock, timeline
local now = now_ms()
local moved = 0
for i = 3, #KEYS do
  local id = ARGV[i - 2]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) <= now and redis.call('ZREM', KEYS[1], id) == 1 then
    local r = redis.call('HMGET', KEYS[i], 'state', 'tl')
    if r[1] == 'scheduled' or r[1] == 'retrying' then
      local eid = redis.call('XADD', KEYS[2], '*', 'i', id)
      redis.call('HSET', KEYS[i], 'state', 'pending', 'entry', eid, 'updated', now,
        'tl', tl_push(r[2], tl_line(now, 'promoted')))
      moved = moved + 1
    end
  end
end
return moved
