-- place: write one new invocation record and its trigger: a stream entry, or a delayed-set member
-- when it is due later. The caller has checked that the record does not exist yet.
-- f: the registration as register.lua receives it, {id, fingerprint, handler, parent id or '',
--   idempotency key or '', delay ms or '', due time (unix ms) or '', traceparent or '',
--   [reply target 'service/handler' or '', [scheduled tick (unix ms) or '', [priority or '',
--   [flow key value computed by the registrar or '']]]]}
-- streams: the partition's stream keys {normal, high, low} (lib/enqueue.lua)
-- fx: its flow (lib/flow.lua fl_new) or nil: due now, it passes the rate and concurrency gates
-- returns the new state ('pending' | 'scheduled' | 'queued')
-- uses: timeline, enqueue, flow

-- the 'accepted' timeline line per (now, state, due), built once per script call: the items of a
-- batch share it (a cjson encode per item was ~8% of a registration's server time)
local PLACE_TL, PLACE_NOW = {}, nil
local function accepted_line(now, state, due)
  if PLACE_NOW ~= now then PLACE_TL, PLACE_NOW = {}, now end
  local k = state  -- a number key for a scheduled one (a string concatenated with it: a sprintf)
  if state == 'scheduled' then k = due end
  local line = PLACE_TL[k]
  if not line then
    line = tl_line(now, 'accepted', '', 0, state, state == 'scheduled' and due or 0)
    PLACE_TL[k] = line
  end
  return line
end

-- an optional field for the record's one extra HSET: x (nil until one is set) with k, v appended
-- when v says something (not nil, not ''); returns x
local function place_opt(x, k, v)
  if v == nil or v == '' then return x end
  x = x or {}
  x[#x + 1] = k
  x[#x + 1] = v
  return x
end

local function place(rec, streams, delayed, service, f, payload, now, fx)
  local due = now
  if f[7] ~= '' then due = tonumber(f[7]) elseif f[6] ~= '' then due = now + tonumber(f[6]) end
  local state, entry, wait, untl = 'pending', '', '', ''
  if due > now then
    state = 'scheduled'
    redis.call('ZADD', delayed, due, f[1])
  elseif fx then
    state, entry, due, wait, untl = fl_go(fx, f[1], f[11] or '', delayed, now, true)
  else
    entry = enqueue(streams, f[11], f[1])
  end
  -- the fields every registration has; a field whose value is what every reader defaults it to
  -- is left out (reliq/store/record.py, "Written at registration"): 'updated' (= created),
  -- 'due' when it is created, 'deliveries', 'crashes', 'epoch' (0) and 'trace' ('' when none).
  -- 'attempt', 'parent' and 'key' stay: the claim.lua of earlier releases replies them without a
  -- default (a rolling deploy runs both).
  redis.call('HSET', rec, 'state', state, 'fp', f[2], 'service', service, 'handler', f[3],
    'payload', payload, 'parent', f[4], 'key', f[5], 'attempt', '1', 'entry', entry,
    'created', now, 'tl', accepted_line(now, state, due))
  -- the optional fields, in one more HSET only when one is set
  local x = place_opt(nil, 'trace', f[8])
  if due ~= now then x = place_opt(x, 'due', due) end
  x = place_opt(place_opt(x, 'reply', f[9]), 'sched', f[10])
  if f[11] == 'high' or f[11] == 'low' then x = place_opt(x, 'prio', f[11]) end
  if x then redis.call('HSET', rec, unpack(x)) end
  if fx then fl_fields(rec, fx, wait, untl) end
  return state
end
