-- promote: move due invocations from the delayed set to the stream: scheduled sends, retries after
-- their backoff, and suspended invocations whose timer is due (the timer fires into the inbox;
-- the invocation resumes when that ends its wait, else waits on for its next timer). Safe with
-- many workers running it: an id is promoted only by the caller whose ZREM removed it.
-- KEYS[1] delayed set, KEYS[2] stream, KEYS[3] suspended set, KEYS[4] per-minute counters
-- ('resumed'), KEYS[5], KEYS[6] the high and low streams (each id goes to the stream of its
-- record's 'prio': lib/enqueue.lua), then per id 2 keys: invocation record, inbox, then the flow
-- keys (lib/flow.lua)
-- ARGV[1..n] invocation ids (same order as the records)
-- A due send or retry passes the rate and concurrency gates (lib/flow.lua fl_promote): it may be
-- delayed again (rate) or queued behind its key.
-- timeline: 'promoted', 'delayed' (rate), or 'resumed' (the timer)
-- returns the number of invocations promoted or resumed
-- uses: clock, timeline, wake, enqueue, flow
local now = now_ms()
local moved = 0
local streams = {KEYS[2], KEYS[5], KEYS[6]}
fl_bind(KEYS, 7 + 2 * #ARGV)
for i = 1, #ARGV do
  local id, rec, inbox = ARGV[i], KEYS[5 + 2 * i], KEYS[6 + 2 * i]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) <= now and redis.call('ZREM', KEYS[1], id) == 1 then
    local r = redis.call('HMGET', rec, 'state', 'tl', 'waits', 'handler', 'fk', 'fseq', 'wait', 'prio')
    if r[1] == 'scheduled' or r[1] == 'retrying' then
      local st = fl_promote(rec, id, r, KEYS[1], now)
      if not st then
        local eid = enqueue(streams, r[8], id)
        redis.call('HSET', rec, 'state', 'pending', 'entry', eid, 'updated', now,
          'tl', tl_push(r[2], tl_line(now, 'promoted')))
      end
      if st ~= 'scheduled' then moved = moved + 1 end
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
