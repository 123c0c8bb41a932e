-- set_intake: an operator's live override of a service's max_queued in one partition (reliq.store.intake):
-- the flow hash field '*!' ('q=<n>' the partition's share, '' no limit), or its removal (the
-- code's '*' applies again). The next registration sees it; nothing waits on it (a send past the
-- limit is refused, not queued), so nothing is admitted here.
-- KEYS[1] flow hash reliq:{S}:flow, KEYS[2] audit stream
-- ARGV[1] 'code' (remove the override) or the field's new value ('q=<n>' or ''), ARGV[2] the value as
--   the operator gave it (audited: a service-wide number, 'none' or 'code'), ARGV[3] who asked
--   (audited; '' = library call, not audited)
-- returns 1
-- uses: timeline
if ARGV[1] == 'code' then
  redis.call('HDEL', KEYS[1], '*!')
else
  redis.call('HSET', KEYS[1], '*!', ARGV[1])
end
audit(KEYS[2], ARGV[3], 'max-queued-set', '*', ARGV[2])
return 1
