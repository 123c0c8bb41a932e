-- backpressure: how many more new invocations this partition accepts now. The limit is the
-- flow hash's '*!' (an operator's override) or '*' (the service's own, published by its workers)
-- as 'q=<n>' (n per partition; a value without 'q=' means no limit), else `default` (the
-- gateway's RELIQ_MAX_QUEUED per partition, '' for none). Queued = the entries of the three
-- streams (waiting, or running until settled) + the delayed set (scheduled, retrying, timers) +
-- the concurrency keys' lines (`wait`, lib/flow.lua's fl:wait, when bound: invocations queued
-- behind a key's holders have no stream entry yet): five O(1) reads, done only when a limit is set.
-- returns the number of invocations still accepted (math.huge when there is no limit)
local function room(flow, streams, delayed, default, wait)
  local spec = redis.call('HMGET', flow, '*!', '*')
  local s = spec[1] or spec[2]
  local limit
  if s then limit = tonumber(string.match(s, 'q=(%d+)')) else limit = tonumber(default) end
  if not limit then return math.huge end
  local queued = redis.call('ZCARD', delayed)
  if wait then queued = queued + redis.call('ZCARD', wait) end
  for i = 1, #streams do queued = queued + redis.call('XLEN', streams[i]) end
  return limit - queued
end
