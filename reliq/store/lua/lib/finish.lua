-- uses: timeline
-- finish: the terminal transition of one invocation, the same for every way it ends (complete,
-- park, retry's cancel, cancel). Writes, in one HSET and in this order: 'state', then `set` (field,
-- value pairs: result, error, reason, cancel flag), 'finished' and 'updated' = now, then, when
-- `held` (it was running), the holder's 'owner', 'lease_until' and 'entry' cleared, then the
-- timeline `tl` with `line` pushed. Retention starts on the record and on the keys in `others`
-- (its steps and children keys; a false slot is skipped: complete expires a key only when the
-- record says it exists).
local function finish(rec, others, ttl, now, state, set, held, tl, line)
  local a = {}
  local function add(...)
    for _, v in ipairs({...}) do a[#a + 1] = v end
  end
  add('state', state)
  add(unpack(set))
  add('finished', now, 'updated', now)
  if held then add('owner', '', 'lease_until', '', 'entry', '') end
  add('tl', tl_push(tl, line))
  redis.call('HSET', rec, unpack(a))
  redis.call('PEXPIRE', rec, ttl)
  for i = 1, 2 do
    if others[i] then redis.call('PEXPIRE', others[i], ttl) end
  end
end

