-- uses: timeline, flow
-- finish: the terminal transition of one invocation, the same for every way it ends (complete,
-- park, retry's cancel, cancel). Writes, in one HSET and in this order: 'state', then `set` (one or two
-- field, value pairs: result, error, reason, cancel flag), 'finished' = now, then, when `clear`,
-- the holder's 'owner', 'lease_until' and 'entry' cleared, then the timeline `tl` with `line`
-- pushed. 'updated' is not written (record.parse takes the latest of the times), nor need a
-- terminal record's holder fields be cleared: it never runs again, and parse ignores them (complete,
-- the hot path, leaves them; park clears them, as redrive reads a failed record as not held).
-- Retention starts on the record and on the keys in `others`
-- (its steps, children and inbox keys; a false slot is skipped: complete expires a key only when
-- the record says it exists). A per-key permit it holds is released (lib/flow.lua); `fk`: the
-- record's 'fk' field when the caller read it (false: it has none), nil when it did not.
local function finish(rec, others, ttl, now, state, set, clear, tl, line, fk)
  -- one redis.call per shape (set: 2 or 4 values; clear or not), with no table built: this runs
  -- once per finished invocation, and a table grown field by field is rehashed at every power
  -- of two (measured: load_tests/instructions_per_task.py)
  local v = tl_push(tl, line)
  if clear then
    if set[3] then
      redis.call('HSET', rec, 'state', state, set[1], set[2], set[3], set[4], 'finished', now,
        'owner', '', 'lease_until', '', 'entry', '', 'tl', v)
    else
      redis.call('HSET', rec, 'state', state, set[1], set[2], 'finished', now,
        'owner', '', 'lease_until', '', 'entry', '', 'tl', v)
    end
  elseif set[3] then
    redis.call('HSET', rec, 'state', state, set[1], set[2], set[3], set[4], 'finished', now, 'tl', v)
  else
    redis.call('HSET', rec, 'state', state, set[1], set[2], 'finished', now, 'tl', v)
  end
  redis.call('PEXPIRE', rec, ttl)
  for i = 1, 3 do
    if others[i] then redis.call('PEXPIRE', others[i], ttl) end
  end
  -- its per-key permit, if it holds one, goes to the next of its key (no id is cut out of the
  -- key when no flow keys are bound or the caller read that the record has no 'fk')
  if FLOW.held and fk ~= false then fl_release(fl_id(rec), fk) end
end
