-- complete: settle a batch of finished attempts in one call. Epoch-fenced: a worker that lost its
-- lease cannot commit or ack. Writes the outcome, starts retention, acks and deletes the entry.
-- KEYS[1] stream, KEYS[2] per-minute counters, KEYS[3] done channel, KEYS[4] outbox, then per
-- invocation its record, followed by its steps, children and inbox keys when its ARGV says 'j'
-- (an attempt that never touched a journal passes the record alone: the call stays small)
-- then the flow keys (lib/flow.lua; optional)
-- ARGV[1] group, ARGV[2] retention ms, then per invocation 5 values:
--   entry id, epoch, final state ('succeeded' | 'cancelled'), result (JSON or ''), 'j' or ''
-- The invocation id is the record key's suffix (after 'inv:').
-- timeline: the final state; counters: succeeded / cancelled of this minute; the ids settled are
-- published on the done channel (one message), with the results of those that succeeded when
-- small (CARRY bytes each, CARRY_ALL in all: lib/notify.lua); an invocation with a parent leaves
-- the outcome in the outbox for the parent, one with a reply target for that handler (lib/wake.lua
-- relay)
-- returns one status per invocation: 'ok' | 'fenced' | 'noop' (already settled for this epoch)
--   | 'keys' (it has journal keys that were not passed: nothing written, call again with them)
-- uses: clock, fence, ack, timeline, finish, notify, wake, flow
local now = now_ms()
local ttl = tonumber(ARGV[2])
local out = {}
local counts = {succeeded = 0, cancelled = 0}
local acked = {}
local done = {}
local carried, carry_left = {}, 65536  -- CARRY_ALL
local pfx = string.find(KEYS[1], ':stream', 1, true) + 4  -- 'reliq:{S}:stream[:high]' -> #'reliq:{S}:inv:'
local kc = 5
local nk = 4
for i = 0, (#ARGV - 2) / 5 - 1 do nk = nk + (ARGV[7 + 5 * i] == 'j' and 4 or 1) end
fl_bind(KEYS, nk + 1)
-- finish's `others` and `set` are filled in place per invocation: no table is built per item
local others, set = {false, false, false}, {'result', ''}
for i = 0, (#ARGV - 2) / 5 - 1 do
  local rec = KEYS[kc]
  local eid, epoch, state, result = ARGV[3 + 5 * i], ARGV[4 + 5 * i], ARGV[5 + 5 * i], ARGV[6 + 5 * i]
  local j = ARGV[7 + 5 * i] == 'j'
  local steps, children, inbox
  if j then
    steps, children, inbox = KEYS[kc + 1], KEYS[kc + 2], KEYS[kc + 3]
    kc = kc + 4
  else
    kc = kc + 1
  end
  -- 'step' is set by the step script, 'kids' by link_child, 'ibx' by wake/note/link_child: only
  -- then do those keys exist
  -- 'fk' only on a record of a keyed flow: one without it holds no permit to release
  local r = redis.call('HMGET', rec, 'epoch', 'state', 'owner', 'tl', 'step', 'kids', 'parent', 'ibx', 'reply', 'fk')
  local refused = fence(r[1], r[2], epoch)
  if refused then
    out[#out + 1] = refused
  elseif (not j) and (r[5] or r[6] or r[8]) then
    out[#out + 1] = 'keys'
  else
    local id = string.sub(rec, pfx + 1)
    others[1], others[2], others[3] = r[5] and steps, r[6] and children, r[8] and inbox
    set[2] = result
    -- the holder's fields stay (finish): a succeeded or cancelled record is never run again
    finish(rec, others, ttl, now, state, set, false, r[4], tl_line(now, state, r[3], epoch), r[10])
    local parent = r[7] and r[7] ~= ''
    if parent or r[9] then  -- the outcome's message is built only for someone to tell
      local v = 'C{}'
      if state == 'succeeded' then v = 'S' .. result end
      if parent then relay(KEYS[4], 'done', r[7], id, v) end
      if r[9] then relay(KEYS[4], 'reply', r[9], id, v) end
    end
    acked[#acked + 1] = eid
    done[#done + 1] = id
    if state == 'succeeded' and #result <= 1024 and #result < carry_left  -- CARRY
        and not string.find(result, '\n', 1, true) then
      carried[#carried + 1] = id .. ' ' .. result
      carry_left = carry_left - #result
    end
    counts[state] = (counts[state] or 0) + 1
    out[#out + 1] = 'ok'
  end
end
ack(KEYS[1], ARGV[1], acked)  -- one XACK and one XDEL for the whole batch
count_minute(KEYS[2], now, 'succeeded', counts.succeeded)
count_minute(KEYS[2], now, 'cancelled', counts.cancelled)
notify(KEYS[3], done, carried)
return out
