-- fence: may the holder of lease `epoch` still write this invocation? Every claim bumps the
-- record's epoch, so a worker that lost its lease (and anyone re-sending an old call) is fenced
-- off; a record no longer running was settled already (once per epoch).
-- have, state: the record's 'epoch' and 'state'; epoch: the caller's lease epoch.
-- stream, group, eid, consumer (optional, renew and release): the entry must also still be
--   pending on that consumer (an XCLAIM on an entry another consumer holds would steal it). Its
--   XPENDING is read first, whatever the verdict (the order of reads the scripts always had).
-- returns nil when the caller may write, else 'fenced' (epoch moved on) | 'noop' (not running)
--   | 'lost' (entry not pending on that consumer)
local function fence(have, state, epoch, stream, group, eid, consumer)
  local p
  if stream then p = redis.call('XPENDING', stream, group, eid, eid, 1) end
  if have ~= epoch then return 'fenced' end
  if state ~= 'running' then return 'noop' end
  if p and (#p == 0 or p[1][2] ~= consumer) then return 'lost' end
  return nil
end

