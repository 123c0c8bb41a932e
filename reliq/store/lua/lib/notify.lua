-- notify: tell the waiters (Client.wait: the gateway's /call and /attach, Client.result) that these
-- invocations finished: one SPUBLISH of their ids, space-separated, on the partition's 'done'
-- channel. The channel comes in KEYS and carries the partition's hash tag, so the script stays in
-- one slot and, on a Cluster, the message stays on that slot's shard (sharded pub/sub). Pub/sub is
-- at-most-once: a waiter also re-reads the record now and then (reliq/client/waiters.py).
local function notify(channel, ids)
  if #ids > 0 then redis.call('SPUBLISH', channel, table.concat(ids, ' ')) end
end
