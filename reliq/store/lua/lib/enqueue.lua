-- enqueue: the one way an invocation's trigger enters a stream (a stream entry 'i' = id).
-- streams: the partition's stream keys, from KEYS; prio: the invocation's priority ('' = normal).
-- returns the entry id
local function enqueue(streams, prio, id)
  return redis.call('XADD', streams[1], '*', 'i', id)
end
