-- uses: clock, terminal, ack, timeline, flow
-- claiming: the claim of a read batch (claim.lua, take.lua). For each entry: skip work that is
-- finished (ack + delete the entry), otherwise bump the lease epoch, record the owner and lease,
-- count deliveries and crashes.
-- KEYS[1] stream, KEYS[2..n+1] invocation records (one per entry, same order as the entry ids)
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] lease ms, ARGV[4] claim token (unique per call: a
-- re-send of the same call after a lost reply returns the same claims without bumping again),
-- ARGV[5..n+4] entry ids; KEYS[n+2..n+7] the flow keys (lib/flow.lua; optional)
-- delivered: nil (every entry is this consumer's: it read them with XREADGROUP), or the set of the
-- entry ids this call delivered to it (take.lua); an entry not in it is someone else's: 'skip',
-- nothing written or acked (unless this is a re-send of the same call: its claims again).
-- A 'queued' record (waiting for a per-key permit) runs only by the entry its admission added: the
-- record names no entry and its id holds a permit. A finished record that still holds one
-- releases it.
-- timeline: 'claimed' (or 'reclaimed' when the record was still running) per new claim
-- A cancel requested of an invocation with a journal (it suspended, ran steps or has children)
-- runs it once more to compensate (status 'compensate'; the flag becomes '2': seen); without a
-- journal it is settled as cancelled without running (status 'cancel').
-- returns 11 values per entry: status ('run' | 'cancel' | 'compensate' | 'skip'), epoch, handler,
--   payload, attempt, crashes, parent, idempotency key, deliveries, traceparent, scheduled tick ms
local function claim_batch(delivered)
  local now = now_ms()
  local n = #ARGV - 4
  fl_bind(KEYS, n + 2)
  local lease = now + tonumber(ARGV[3])
  local out = {}
  -- One HMGET and at most one HSET per entry (the counters are bumped here, not with HINCRBY):
  -- the drain rate of a worker is bounded by the Lua time per invocation.
  local F = {'state', 'entry', 'cancel', 'claim', 'tl', 'epoch', 'handler', 'payload', 'attempt', 'crashes',
    'parent', 'key', 'deliveries', 'trace', 'sched'}
  -- whether it has a journal ('susp', 'step', 'kids') is read only for a cancel requested ('1')
  local function status(r, rec)
    if r[3] == '2' then return 'compensate' end
    if r[3] ~= '1' then return 'run' end
    local j = redis.call('HMGET', rec, 'susp', 'step', 'kids')
    if j[1] or j[2] or j[3] then return 'compensate' end
    return 'cancel'
  end
  local function claim_one(rec, eid)
    local r = redis.call('HMGET', rec, unpack(F))
    local st = r[1]
    if st == 'running' and r[4] == ARGV[4] and r[2] == eid then
      -- a re-sent call: the same claim again, nothing bumped; the fields a registration may leave
      -- out read as their defaults, as in a first claim (attempt 1, crashes 0)
      out[#out + 1] = status(r, rec)
      out[#out + 1] = r[6]
      out[#out + 1] = r[7]
      out[#out + 1] = r[8]
      out[#out + 1] = r[9] or '1'
      out[#out + 1] = r[10] or 0
      for j = 11, 15 do out[#out + 1] = r[j] or '' end
    elseif delivered and not delivered[eid] then
      -- not delivered to this consumer by this call (another one read it first): nothing written
      for _ = 1, 11 do out[#out + 1] = '' end
      out[#out - 10] = 'skip'
    elseif (not st) or TERMINAL[st] or (r[2] ~= eid and not fl_admitted(st, r[2], fl_id(rec))) then
      -- unknown, finished, or a stale duplicate entry: never run it again
      if st and TERMINAL[st] then fl_release(fl_id(rec)) end
      ack(KEYS[1], ARGV[1], {eid})
      for _ = 1, 11 do out[#out + 1] = '' end
      out[#out - 10] = 'skip'
    else
      local event, crashes = 'claimed', tonumber(r[10]) or 0
      if st == 'running' then
        crashes = crashes + 1
        event = 'reclaimed'
      end
      local epoch = (tonumber(r[6]) or 0) + 1
      local deliveries = (tonumber(r[13]) or 0) + 1
      local s = status(r, rec)
      if s == 'compensate' and r[3] ~= '2' then redis.call('HSET', rec, 'cancel', '2') end
      -- the arguments go straight to redis.call: a table built and unpacked per entry cost more
      local tl = tl_push(r[5], tl_line(now, event, ARGV[2], epoch))
      -- 'started' is this transition's time ('updated' is not written: record.parse takes the
      -- latest of the times); 'crashes' only when it grew (a record without it reads 0)
      if st == 'queued' then  -- an admitted waiter: this entry is its own now (one HSET, not two)
        redis.call('HSET', rec, 'state', 'running', 'owner', ARGV[2], 'lease_until', lease, 'started', now,
          'claim', ARGV[4], 'epoch', epoch, 'deliveries', deliveries, 'tl', tl, 'entry', eid, 'wait', '',
          'until', '')
      elseif event == 'reclaimed' then
        redis.call('HSET', rec, 'state', 'running', 'owner', ARGV[2], 'lease_until', lease, 'started', now,
          'claim', ARGV[4], 'epoch', epoch, 'deliveries', deliveries, 'crashes', crashes, 'tl', tl)
      else
        redis.call('HSET', rec, 'state', 'running', 'owner', ARGV[2], 'lease_until', lease, 'started', now,
          'claim', ARGV[4], 'epoch', epoch, 'deliveries', deliveries, 'tl', tl)
      end
      out[#out + 1] = s
      out[#out + 1] = epoch
      out[#out + 1] = r[7]
      out[#out + 1] = r[8]
      -- defaulted, so that a later release may leave them out of a registration (lib/place.lua)
      out[#out + 1] = r[9] or '1'
      out[#out + 1] = crashes
      out[#out + 1] = r[11] or ''
      out[#out + 1] = r[12] or ''
      out[#out + 1] = deliveries
      out[#out + 1] = r[14] or ''
      out[#out + 1] = r[15] or ''
    end
  end
  for i = 2, n + 1 do claim_one(KEYS[i], ARGV[i + 3]) end
  return out
end
