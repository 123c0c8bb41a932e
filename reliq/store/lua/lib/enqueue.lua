-- enqueue: put an invocation's trigger on the stream of its priority. Every XADD of a trigger
-- (register, promote, resume, redrive, retry-now, a flow admission) goes through here, so the
-- record's 'prio' alone decides the stream its entry is in.
-- streams: the partition's stream keys from KEYS, {normal, high, low} (normal is
--   'reliq:{S}:stream', the stream of every release before priorities: upgrade in place)
-- prio: 'high' | 'low' | '' or nil or 'normal' (normal)
-- returns the new entry id
local PRIO_STREAM = {high = 2, low = 3}
local function stream_of(streams, prio)
  return streams[PRIO_STREAM[prio or ''] or 1]
end

local function enqueue(streams, prio, id)
  return redis.call('XADD', stream_of(streams, prio), '*', 'i', id)
end
