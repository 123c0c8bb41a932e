-- uses: timeline, flow
-- finish: the terminal transition of one invocation, the same for every way it ends (complete,
-- park, retry's cancel, cancel). Writes, in one HSET and in this order: 'state', then `set` (field,
-- value pairs: result, error, reason, cancel flag), 'finished' and 'updated' = now, then, when
-- `held` (it was running), the holder's 'owner', 'lease_until' and 'entry' cleared, then the
-- timeline `tl` with `line` pushed. Retention starts on the record and on the keys in `others`
-- (its steps, children and inbox keys; a false slot is skipped: complete expires a key only when
-- the record says it exists). A per-key permit it holds is released (lib/flow.lua); `fk` false:
-- the caller read the record's flow key and there is none, so it holds no permit to look up.
local function finish(rec, others, ttl, now, state, set, held, tl, line, fk)
  -- built by index, without closures or vararg tables: this runs once per finished invocation
  local a = {'state', state}
  for i = 1, #set do a[i + 2] = set[i] end
  local n = #a
  a[n + 1], a[n + 2], a[n + 3], a[n + 4] = 'finished', now, 'updated', now
  n = n + 4
  if held then
    a[n + 1], a[n + 2], a[n + 3], a[n + 4], a[n + 5], a[n + 6] = 'owner', '', 'lease_until', '', 'entry', ''
    n = n + 6
  end
  a[n + 1], a[n + 2] = 'tl', tl_push(tl, line)
  redis.call('HSET', rec, unpack(a))
  redis.call('PEXPIRE', rec, ttl)
  for i = 1, 3 do
    if others[i] then redis.call('PEXPIRE', others[i], ttl) end
  end
  if fk ~= false then fl_release(fl_id(rec)) end  -- its permit, if any, goes to the next of its key
end

