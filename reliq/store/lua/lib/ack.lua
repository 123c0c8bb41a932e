-- ack: the group is done with these stream entries: XACK them and XDEL them (a stream holds only
-- work not yet settled; its length is the backlog). One call of each per 1000 ids: Lua's unpack
-- has a stack limit.
local function ack(stream, group, ids)
  for j = 1, #ids, 1000 do
    local part = {unpack(ids, j, math.min(j + 999, #ids))}
    redis.call('XACK', stream, group, unpack(part))
    redis.call('XDEL', stream, unpack(part))
  end
end

