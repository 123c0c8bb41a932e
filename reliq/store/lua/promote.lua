-- promote: move due invocations from the delayed set to the stream: scheduled sends, retries after
-- their backoff, and suspended invocations whose timer is due (the timer fires into the inbox;
-- the invocation resumes when that ends its wait, else waits on for its next timer). Safe with
-- many workers running it: an id is promoted only by the caller whose ZREM removed it.
-- KEYS[1] delayed set, KEYS[2] stream, KEYS[3] suspended set, KEYS[4] per-minute counters
-- ('resumed'), KEYS[5], KEYS[6] the high and low streams (each id goes to the stream of its
-- record's 'prio': lib/enqueue.lua), then per id 2 keys: invocation record, inbox
-- ARGV[1..n] invocation ids (same order as the records)
-- timeline: 'promoted', or 'resumed' (the timer)
-- returns the number of invocations promoted or resumed
-- uses: clock, timeline, wake, enqueue
local now = now_ms()
local moved = 0
local streams = {KEYS[2], KEYS[5], KEYS[6]}
for i = 1, #ARGV do
  local id, rec, inbox = ARGV[i], KEYS[5 + 2 * i], KEYS[6 + 2 * i]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) <= now and redis.call('ZREM', KEYS[1], id) == 1 then
    local r = redis.call('HMGET', rec, 'state', 'tl', 'waits', 'prio')
    if r[1] == 'scheduled' or r[1] == 'retrying' then
      local eid = enqueue(streams, r[4], id)
      redis.call('HSET', rec, 'state', 'pending', 'entry', eid, 'updated', now,
        'tl', tl_push(r[2], tl_line(now, 'promoted')))
      moved = moved + 1
    elseif r[1] == 'suspended' then
      local ready, nxt = waits_ready(inbox, r[3], now)
      if ready then
        resume(rec, streams, KEYS[1], KEYS[3], KEYS[4], id, now, r[2], '', 'timer')
        moved = moved + 1
      elseif nxt then
        redis.call('ZADD', KEYS[1], nxt, id)
      end
    end
  end
end
return moved
