-- take: deliver and claim in one call the new entries a worker found with a plain XREAD (which
-- delivers nothing): one round trip, and on an 'appendfsync always' server one fsync, fewer than an
-- XREADGROUP followed by a claim. XREADGROUP '>' delivers up to n entries to the consumer here;
-- those the caller named are claimed (lib/claiming.lua); those it named that this call did not
-- deliver (another consumer's read came first) are skipped, nothing written; those delivered that
-- it did not name (its XREAD started behind the group) are returned for a plain claim.
-- KEYS and ARGV as claim.lua's
-- returns claim.lua's 11 values per named entry, then the mark (the id a next XREAD starts from:
-- past every entry delivered so far, '' when unknown: the stream is empty), then an entry id and
-- invocation id per entry delivered and not named
-- uses: claiming
local n = #ARGV - 4
local delivered, extra = {}, {}
local got = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', n, 'STREAMS', KEYS[1], '>')
local mark = ''
if got then
  local named = {}
  for i = 5, n + 4 do named[ARGV[i]] = true end
  for _, e in ipairs(got[1][2]) do
    delivered[e[1]] = true
    mark = e[1]
    if not named[e[1]] then
      extra[#extra + 1] = e[1]
      extra[#extra + 1] = e[2][2]  -- the entry's one field: i <invocation id>
    end
  end
end
if not (got and #got[1][2] == n) then
  -- every entry there is was delivered: the mark is the last one, wherever other reads left the
  -- group (a next XREAD from an older mark would find entries that are not new and wake at once)
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if last[1] then mark = last[1][1] end
end
local out = claim_batch(delivered)
out[#out + 1] = mark
for _, v in ipairs(extra) do out[#out + 1] = v end
return out
