-- timeline: the helpers of the scripts that write an invocation's timeline, the per-minute outcome
-- counters or the audit stream (prepended to each script whose header names it: reliq/store/sources.py).
--
-- Timeline: record field 'tl', one JSON array per line:
--   [at ms, event, actor, epoch, detail, until ms, count]   (trailing '' / 0 values left out)
-- Bounded: past 4096 bytes the first event stays, a 'gap' event counts what was dropped, and the
-- oldest events after it go until the rest fits in 3072 bytes. It lives in the record, so it
-- expires with it.
-- memos of one script call: the same clock value, actor and small epochs recur in every line
local TL_NUM, TL_SAFE = {}, {}
local function tl_num(x)
  local s = TL_NUM[x]
  if not s then
    s = tostring(x)
    TL_NUM[x] = s
  end
  return s
end
local function tl_safe(s)  -- nothing in it JSON would escape
  local ok = TL_SAFE[s]
  if ok == nil then
    ok = not string.find(s, '[%c"\\/\128-\255]')
    TL_SAFE[s] = ok
  end
  return ok
end

local function tl_line(at, ev, actor, epoch, detail, untl, count)
  actor, detail = actor or '', detail or ''
  epoch, untl, count = tonumber(epoch) or 0, tonumber(untl) or 0, tonumber(count) or 0
  -- the common lines are concatenated (no table, no cjson.encode)
  if count == 0 and untl == 0 and detail == '' and tl_safe(actor) and tl_safe(ev) then
    if epoch ~= 0 then
      return '[' .. tl_num(at) .. ',"' .. ev .. '","' .. actor .. '",' .. tl_num(epoch) .. ']'
    elseif actor ~= '' then
      return '[' .. tl_num(at) .. ',"' .. ev .. '","' .. actor .. '"]'
    end
    return '[' .. tl_num(at) .. ',"' .. ev .. '"]'
  end
  local a = {at, ev, actor, epoch, detail, untl, count}
  local n = 7
  while n > 2 and (a[n] == '' or a[n] == 0) do
    a[n] = nil
    n = n - 1
  end
  return cjson.encode(a)
end

local function tl_push(tl, line)
  if (not tl) or tl == '' then return line end
  tl = tl .. '\n' .. line
  if #tl <= 4096 then return tl end
  local a = string.find(tl, '\n', 1, true)
  local head, rest = string.sub(tl, 1, a - 1), string.sub(tl, a + 1)
  local dropped = 0
  local g = string.match(rest, '^%[%d+,"gap","",0,"",0,(%d+)%]\n')
  if g then
    dropped = tonumber(g)
    rest = string.sub(rest, string.find(rest, '\n', 1, true) + 1)
  end
  while #rest > 3072 do
    local b = string.find(rest, '\n', 1, true)
    if not b then break end
    rest = string.sub(rest, b + 1)
    dropped = dropped + 1
  end
  local at = string.match(line, '^%[(%d+)')
  return head .. '\n' .. tl_line(tonumber(at) or 0, 'gap', '', 0, '', 0, dropped) .. '\n' .. rest
end

-- Renewals are coalesced: a run of renewals by one holder is one 'renewed' event (count, latest
-- lease end), so a long handler does not fill the timeline.
local function tl_renewed(tl, now, actor, epoch, untl)
  if tl and tl ~= '' then
    local r = string.find(string.reverse(tl), '\n', 1, true)
    local p = 1
    if r then p = #tl - r + 2 end
    local ok, ev = pcall(cjson.decode, string.sub(tl, p))
    if ok and type(ev) == 'table' and ev[2] == 'renewed' and ev[3] == actor and tonumber(ev[4]) == tonumber(epoch) then
      return string.sub(tl, 1, p - 1) .. tl_line(ev[1], 'renewed', actor, epoch, '', untl, (tonumber(ev[7]) or 1) + 1)
    end
  end
  return tl_push(tl, tl_line(now, 'renewed', actor, epoch, '', untl, 1))
end

-- Per-minute outcome counters: one hash per service with 60 slots (minute mod 60). Field '<slot>'
-- holds the minute the slot counts, '<slot>:<outcome>' the count; a new minute resets its slot.
local function count_minute(key, now, outcome, n)
  if n == 0 then return end
  local minute = math.floor(now / 60000)
  local slot = tostring(minute % 60)
  if redis.call('HGET', key, slot) ~= tostring(minute) then
    redis.call('HSET', key, slot, minute, slot .. ':succeeded', 0, slot .. ':failed', 0,
      slot .. ':retried', 0, slot .. ':cancelled', 0, slot .. ':resumed', 0)
  end
  redis.call('HINCRBY', key, slot .. ':' .. outcome, n)
end

-- Audit: operator actions append (who, action, target, result) to the service's capped audit
-- stream in the same call as the change. Calls without a 'who' (library use) are not audited.
local function audit(key, who, action, target, result)
  if (not who) or who == '' then return end
  redis.call('XADD', key, 'MAXLEN', '~', 5000, '*', 'who', who, 'action', action, 'target', target,
    'result', result)
end

