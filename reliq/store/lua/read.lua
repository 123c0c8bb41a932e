-- read: deliver up to n new entries of a partition's three priority streams to one consumer, by
-- the weighted read rule (reliq/store/priority.py, docs/architecture.md section 12): first each
-- level gets its quota of the n slots (the caller takes the quotas from a repeating pattern, six
-- high, three normal, one low in every ten), then the slots left go to the levels in priority
-- order (high, normal, low), skipping a level that ran dry. So under contention the levels share
-- the starts 6:3:1, and an idle level's share goes to the others: a high-priority entry behind a
-- normal backlog is delivered by the next read. A level whose stream is empty (XLEN 0) is not
-- read at all.
-- KEYS[1] normal stream, KEYS[2] high stream, KEYS[3] low stream
-- ARGV[1] group, ARGV[2] consumer, ARGV[3..5] the quotas of normal, high, low
-- returns 3 arrays (normal, high, low) of entry id, invocation id pairs, in stream order
local out = {{}, {}, {}}
local dry = {}
local function take(level, count)
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', count, 'STREAMS', KEYS[level], '>')
  local got = 0
  if r then
    local o = out[level]
    for _, e in ipairs(r[1][2]) do
      o[#o + 1] = e[1]
      o[#o + 1] = e[2][2]
      got = got + 1
    end
  end
  if got < count then dry[level] = true end
  return got
end
-- a level with an empty stream has nothing to deliver: its quota goes, before any read, to the
-- first level in priority order that has entries, so normal-only traffic costs one XREADGROUP
local q = {tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])}
local spare = 0
for level = 1, 3 do
  if redis.call('XLEN', KEYS[level]) == 0 then
    dry[level] = true
    spare = spare + q[level]
    q[level] = 0
  end
end
for _, level in ipairs({2, 1, 3}) do
  if spare > 0 and not dry[level] then
    q[level] = q[level] + spare
    spare = 0
  end
end
local left = spare
for level = 1, 3 do
  if q[level] > 0 then left = left + q[level] - take(level, q[level]) end
end
for _, level in ipairs({2, 1, 3}) do
  if left <= 0 then break end
  if not dry[level] then left = left - take(level, left) end
end
return out
