-- uses: timeline, enqueue, flow
-- wake: suspension's shared rules. A suspended invocation's record field 'waits' is a JSON array
-- of [inbox field, any, due ms]: what its handler awaits. Inbox values start with their kind:
-- 'S' child succeeded, 'F' child failed, 'C' child cancelled, 'V' promise value, 'R' promise
-- rejected, 'T' timer fired. Items with any = 1 (a deadline, a promise) end the wait alone; the
-- others (children, sleeps) end it when all are in, or as soon as one of them failed.
-- A timer item (due > 0) fires here when due: 'T' is written to its field.
-- returns ready (boolean), and the next due time of a timer not fired yet (or nil)
local function waits_ready(inbox, waits_json, now)
  local ok, waits = pcall(cjson.decode, waits_json or '')
  if (not ok) or type(waits) ~= 'table' or #waits == 0 then return true, nil end
  local alls, done, nxt = 0, 0, nil
  for _, w in ipairs(waits) do
    local f, any, due = w[1], w[2] == 1, tonumber(w[3]) or 0
    local v = redis.call('HGET', inbox, f)
    if (not v) and due > 0 then
      if due <= now then
        redis.call('HSET', inbox, f, 'T')
        v = 'T'
      elseif (not nxt) or due < nxt then
        nxt = due
      end
    end
    if not any then alls = alls + 1 end
    if v then
      local kind = string.sub(v, 1, 1)
      if any or kind == 'F' or kind == 'C' or kind == 'R' then return true, nil end
      done = done + 1
    end
  end
  return alls > 0 and done == alls, nxt
end

-- resume: a suspended invocation is triggered again: a new stream entry, state 'pending', out of
-- the suspended set (and of the delayed set, where a timer of its may wait). Counted as the
-- outcome 'resumed' in the per-minute counters, and in their field 'resumed' (a running total,
-- never reset: what /metrics reports as a counter). `streams`: {normal, high, low}; the entry goes
-- to the record's priority (lib/enqueue.lua), so a resumed parent keeps it. One that gave its
-- per-key permit back when it suspended is queued for one again instead (state 'queued',
-- lib/flow.lua fl_requeue).
local function resume(rec, streams, delayed, suspended, minutes, id, now, tl, actor, detail)
  local state, eid = 'pending', ''
  if fl_requeue(rec, id, now) then
    state = 'queued'
  else
    eid = enqueue(streams, redis.call('HGET', rec, 'prio'), id)
  end
  redis.call('HSET', rec, 'state', state, 'entry', eid, 'waits', '', 'updated', now,
    'tl', tl_push(tl, tl_line(now, 'resumed', actor, 0, detail)))
  redis.call('ZREM', suspended, id)
  redis.call('ZREM', delayed, id)
  count_minute(minutes, now, 'resumed', 1)
  redis.call('HINCRBY', minutes, 'resumed', 1)
  return eid
end

-- relay: a message for another slot (a parent to wake, a child to cancel), written in the same
-- script as the change it follows from and delivered at least once by the workers' relay
-- (reliq/worker/relay.py), which deletes it only after the target's script applied it.
local function relay(outbox, kind, target, source, value)
  redis.call('XADD', outbox, '*', 'k', kind, 't', target, 's', source, 'v', value or '')
end
