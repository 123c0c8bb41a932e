-- clock: the server's time in unix ms, the one clock every writer agrees on (scripts never take
-- the time from their caller). TIME is allowed in a writing script because a script's effects,
-- not the script, are replicated and written to the AOF.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

