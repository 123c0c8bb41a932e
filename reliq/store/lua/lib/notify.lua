-- notify: tell the waiters (Client.wait: the gateway's /call and /attach, Client.result) that these
-- invocations finished: one SPUBLISH on the partition's 'done' channel. The channel comes in KEYS
-- and carries the partition's hash tag, so the script stays in one slot and, on a Cluster, the
-- message stays on that slot's shard (sharded pub/sub). Pub/sub is at-most-once: a waiter also
-- re-reads the record now and then (reliq/client/waiters.py).
-- Message: the ids, space-separated; then, when `carried` has any, one line per small succeeded
-- result, '\n<id> <result JSON>' (complete.lua: a waiter answers from it without reading the
-- record; JSON has no raw newline). A reader that splits the message on whitespace (the release
-- before) still finds every id, and at worst wakes a waiter for nothing (it re-reads).
local function notify(channel, ids, carried)
  if #ids == 0 then return end
  local msg = table.concat(ids, ' ')
  if carried and #carried > 0 then msg = msg .. '\n' .. table.concat(carried, '\n') end
  redis.call('SPUBLISH', channel, msg)
end
