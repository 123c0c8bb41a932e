-- uses: enqueue, timeline
-- flow: per-key concurrency and rate limits (issue 14; data model: reliq/store/flow.py).
-- A script that starts, ends or queues work binds the partition's flow keys once with fl_bind
-- (KEYS from index i: spec hash, fl:held, fl:count, fl:wait, fl:tat, then the three
-- streams normal, high, low for enqueue: an admitted waiter goes to its own level's stream,
-- whatever level the releasing entry had). A caller that passes none gets no flow control (every
-- fl_* function is a no-op).
-- Permit: an invocation of a keyed handler holds one (limit or not) from its start until a terminal
-- transition (finish), or until it suspends when its spec says keep = false. A retry and a
-- reclaim after a lost lease keep it. Waiters hold no stream entry: the release that frees a
-- permit hands it to the next waiter of the key in the same script (fl_admit).
local FLOW = {}
local FLOW_SPECS = {}

local function fl_bind(keys, i)
  if keys[i] then
    FLOW = {spec = keys[i], held = keys[i + 1], count = keys[i + 2], wait = keys[i + 3],
      tat = keys[i + 4], streams = {keys[i + 5], keys[i + 6], keys[i + 7]}}
  end
end

-- the handler's spec: the code's (field <handler>) with the operator's override (<handler>!)
-- merged over it; false when neither exists. Read once per handler and script call.
local function fl_spec(handler)
  if not FLOW.spec then return false end
  local s = FLOW_SPECS[handler]
  if s ~= nil then return s end
  local v = redis.call('HMGET', FLOW.spec, handler, handler .. '!')
  s = false
  if v[1] or v[2] then
    s = {}
    for j = 1, 2 do
      if v[j] then
        local ok, d = pcall(cjson.decode, v[j])
        if ok and type(d) == 'table' then
          for name, x in pairs(d) do if j == 1 or name ~= 'key' then s[name] = x end end
        end
      end
    end
  end
  FLOW_SPECS[handler] = s
  return s
end

-- the flow key of a new invocation, 'handler NUL value': the payload's field s.key, or the value
-- the registrar computed (given; the only source for a callable key, s.key = '()'). nil when the
-- spec names no key; false when the value is missing or not a string/integer (status bad_key).
local function fl_key(s, handler, payload, given)
  if not s or not s.key or s.key == '' then return nil end
  local v = given
  if (not v) or v == '' then
    if s.key == '()' then return false end
    local ok, d = pcall(cjson.decode, payload)
    if (not ok) or type(d) ~= 'table' then return false end
    v = d[s.key]
    if type(v) == 'number' then
      if v ~= math.floor(v) or math.abs(v) >= 9007199254740992 then return false end
      v = string.format('%.0f', v)
    elseif type(v) ~= 'string' then
      return false
    end
  end
  if #v > 256 or string.find(v, '\0', 1, true) then return false end
  return handler .. '\0' .. v
end

-- GCRA: when may this start happen? Charges the bucket (a start scheduled later is paid for).
local function fl_rate(s, fk, handler, now)
  local rate, per = tonumber(s.rate) or 0, tonumber(s.per) or 0
  if rate <= 0 or per <= 0 then return now end
  local t = per / rate
  local burst = math.max(1, tonumber(s.burst) or 1)
  local b = handler
  if s.rkeyed and fk then b = fk end
  redis.call('ZREMRANGEBYSCORE', FLOW.tat, '-inf', now)
  local tat = tonumber(redis.call('ZSCORE', FLOW.tat, b)) or now
  local run = math.max(now, tat - (burst - 1) * t)
  local nt = math.max(tat, run) + t
  redis.call('ZADD', FLOW.tat, nt, b)
  if redis.call('PTTL', FLOW.tat) < nt - now then redis.call('PEXPIRE', FLOW.tat, math.ceil(nt - now) + 1000) end
  return math.ceil(run)
end

-- a registration-order sequence for a new waiter of fk (16 digits: ms * 1000, past the last one)
local function fl_seq(fk, now)
  local seq = now * 1000
  local last = redis.call('ZREVRANGEBYLEX', FLOW.wait, '(' .. fk .. '\1', '[' .. fk .. '\0', 'LIMIT', 0, 1)[1]
  if last then
    local p = tonumber(string.sub(last, #fk + 2, #fk + 17))
    if p and p >= seq then seq = p + 1 end
  end
  return string.format('%016.0f', seq)
end

-- the first waiter of fk (its wait-set member), nil when none
local function fl_next(fk)
  return redis.call('ZRANGEBYLEX', FLOW.wait, '[' .. fk .. '\0', '(' .. fk .. '\1', 'LIMIT', 0, 1)[1]
end

local function fl_take(fk, id)
  redis.call('HSET', FLOW.held, id, fk)
  redis.call('HINCRBY', FLOW.count, fk, 1)
end

-- the concurrency gate: take a permit of fk for id, or queue it behind the key's waiters (the
-- caller records state 'queued', wait 'concurrency', no stream entry). seq: its place in the
-- key's line ('' = a new one: after the last waiter). returns taken, and seq. Only admission
-- depends on the limit: a start is recorded as a holder whatever it is (none, or lifted by an
-- override to 0), so that a limit imposed later (an override cleared or set, a deploy that adds
-- one) counts the invocations started meanwhile
local function fl_gate(s, fk, seq, prio, id, now)
  local limit = tonumber(s.limit) or 0
  if limit > 0 then
    local n = tonumber(redis.call('HGET', FLOW.count, fk)) or 0
    if n >= limit or fl_next(fk) then
      if seq == '' then seq = fl_seq(fk, now) end
      redis.call('ZADD', FLOW.wait, 0, fk .. '\0' .. seq .. '\0' .. prio .. '\0' .. id)
      return false, seq
    end
  end
  fl_take(fk, id)
  if seq == '' then seq = string.format('%016.0f', now * 1000) end
  return true, seq
end

-- hand free permits of fk to its next waiters (registration order): each becomes a holder and
-- gets a stream entry. Their records are not in KEYS: they stay 'queued' with entry '' until
-- claim.lua takes the entry (fl_admitted). At most 100 per call (a limit lifted live).
-- n: the key's holders now, stored: its count as stored (nil: read both). The count is written
-- once at the end, and only when it changed: a release handing its permit to the next waiter
-- (the common case) leaves it alone.
local function fl_admit(fk, n, stored)
  local s = fl_spec(string.match(fk, '^[^%z]*'))
  local limit = s and tonumber(s.limit) or 0
  if not n then
    n = tonumber(redis.call('HGET', FLOW.count, fk)) or 0
    stored = n
  end
  for _ = 1, 100 do
    if limit > 0 and n >= limit then break end
    local m = fl_next(fk)
    if not m then break end
    redis.call('ZREM', FLOW.wait, m)
    local prio, id = string.match(string.sub(m, #fk + 19), '^([^%z]*)%z(.*)$')
    redis.call('HSET', FLOW.held, id, fk)
    n = n + 1
    enqueue(FLOW.streams, prio, id)
  end
  if n ~= stored then
    if n > 0 then redis.call('HSET', FLOW.count, fk, n) else redis.call('HDEL', FLOW.count, fk) end
  end
end

-- give id's permit back (a terminal transition, or a suspension that does not keep it) and admit
-- the next waiter of its key. fk: the record's 'fk' when the caller read it (false: the record
-- has none, so it holds no permit: nothing to read), nil when it did not (read from fl:held)
local function fl_release(id, fk)
  if (not FLOW.held) or fk == false then return end
  if fk then
    if redis.call('HDEL', FLOW.held, id) == 0 then return end
  else
    fk = redis.call('HGET', FLOW.held, id)
    if not fk then return end
    redis.call('HDEL', FLOW.held, id)
  end
  local n = tonumber(redis.call('HGET', FLOW.count, fk)) or 1
  fl_admit(fk, n - 1, n)
end

-- take a queued invocation out of its key's line (a cancel); false when it was not waiting
local function fl_unwait(rec, id)
  if not FLOW.wait then return false end
  local r = redis.call('HMGET', rec, 'fk', 'fseq')
  if not r[1] then return false end
  local from = r[1] .. '\0' .. (r[2] or '')
  for _, m in ipairs(redis.call('ZRANGEBYLEX', FLOW.wait, '[' .. from .. '\0', '(' .. from .. '\1')) do
    if string.sub(m, -#id - 1) == '\0' .. id then
      redis.call('ZREM', FLOW.wait, m)
      return true
    end
  end
  return false
end

-- claim.lua: may this entry start a 'queued' record? Only the entry its admission added (the
-- record says entry '' and the id holds a permit)
local function fl_admitted(state, entry, id)
  return state == 'queued' and entry == '' and FLOW.held ~= nil
    and redis.call('HEXISTS', FLOW.held, id) == 1
end

local function fl_id(rec)
  return string.match(rec, ':inv:(.*)$')
end

-- a start (a new invocation due now, or a due scheduled send or retry): rate first (unless not
-- charge: paid already), then the concurrency gate (unless fx.held: a retry keeps its permit).
-- fx: {s = spec, fk = flow key or nil, handler, seq, held}. Writes the trigger (stream entry,
-- delayed-set member or wait-set member) and fx.seq; returns state, entry, due, wait, until:
-- 'pending' with an entry | 'scheduled' (wait 'rate' until due) | 'queued' (wait 'concurrency')
local function fl_go(fx, id, prio, delayed, now, charge)
  if charge then
    local run = fl_rate(fx.s, fx.fk, fx.handler, now)
    if run > now then
      redis.call('ZADD', delayed, run, id)
      return 'scheduled', '', run, 'rate', run
    end
  end
  if fx.fk and not fx.held then
    local ok
    ok, fx.seq = fl_gate(fx.s, fx.fk, fx.seq, prio, id, now)
    if not ok then return 'queued', '', now, 'concurrency', '' end
  end
  return 'pending', enqueue(FLOW.streams, prio, id), now, '', ''
end

-- register.lua: the flow of a new invocation: nil (no limit applies), false (bad key), or fx.
-- f[12]: the key value a registrar computed (a callable key), '' or absent otherwise
local function fl_new(f, payload)
  local s = fl_spec(f[3])
  if not s then return nil end
  local fk = fl_key(s, f[3], payload, f[12])
  if fk == false then return false end
  return {s = s, fk = fk, handler = f[3], seq = ''}
end

-- the flow fields of a record: the key, its place in the key's line, why it waits and until when
local function fl_fields(rec, fx, wait, untl)
  if fx.fk then redis.call('HSET', rec, 'fk', fx.fk, 'fseq', fx.seq) end
  redis.call('HSET', rec, 'wait', wait, 'until', untl)
end

-- promote.lua: a due scheduled send or retry, r = its record's state, tl, waits, handler, fk,
-- fseq, wait, prio. nil when no flow applies (the caller enqueues it as before); else the state it is
-- in now, its record written. A rate reservation made earlier (wait 'rate') is not charged again.
local function fl_promote(rec, id, r, delayed, now)
  local s = fl_spec(r[4])
  if not s then return nil end
  local fk = r[5]
  if (not fk) and s.key and s.key ~= '' then
    -- placed without a key (a debounce window: its payload may have changed): from the payload
    fk = fl_key(s, r[4], redis.call('HGET', rec, 'payload'), nil) or nil
  end
  local fx = {s = s, fk = fk, handler = r[4], seq = r[6] or '',
    held = fk ~= nil and redis.call('HEXISTS', FLOW.held, id) == 1}
  local st, eid, due, wait, untl = fl_go(fx, id, r[8] or '', delayed, now, r[7] ~= 'rate')
  local detail = st
  if wait == 'rate' then detail = 'rate limit' end
  redis.call('HSET', rec, 'state', st, 'entry', eid, 'due', due, 'updated', now,
    'tl', tl_push(r[2], tl_line(now, st == 'scheduled' and 'delayed' or 'promoted', '', 0, detail, untl)))
  fl_fields(rec, fx, wait, untl)
  return st
end

-- suspend.lua: a suspending invocation gives its permit back when its spec says keep = false
local function fl_suspend(rec, id)
  if not FLOW.held then return end
  local s = fl_spec(redis.call('HGET', rec, 'handler'))
  if s and s.keep == false then fl_release(id) end
end

-- a resume (lib/wake.lua resume) or a redrive: true when it must wait for a permit again (it gave
-- its permit back: by keep = false, or it failed): queued at its original place in the key's line
local function fl_requeue(rec, id, now)
  if not FLOW.held then return false end
  local r = redis.call('HMGET', rec, 'fk', 'fseq', 'handler', 'prio')
  if (not r[1]) or redis.call('HEXISTS', FLOW.held, id) == 1 then return false end
  local s = fl_spec(r[3])
  if not s then return false end
  local ok, seq = fl_gate(s, r[1], r[2] or '', r[4] or '', id, now)
  if not ok then redis.call('HSET', rec, 'wait', 'concurrency', 'fseq', seq) end
  return not ok
end
