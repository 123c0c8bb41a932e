-- reap: delete the group's consumers that hold nothing and have been idle for a long time (dead
-- workers' names; every worker process has a fresh one). Checking and deleting in one script is
-- what makes it safe: XGROUP DELCONSUMER drops the consumer's pending entries, and a consumer that
-- claimed an entry between a separate check and the delete would lose track of it for good.
-- A live consumer reads every block interval, so its idle time never gets near ARGV[2]; one
-- deleted anyway is recreated by its next XREADGROUP.
-- KEYS[1] stream
-- ARGV[1] group, ARGV[2] min idle ms, ARGV[3] at most this many per call
-- returns the names deleted
local out = {}
local limit = tonumber(ARGV[3])
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if #out < limit and tonumber(f['pending']) == 0 and tonumber(f['idle']) >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    out[#out + 1] = f['name']
  end
end
return out
