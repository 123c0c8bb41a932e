-- record_lost: log stream entries that XAUTOCLAIM reported as deleted while pending (data loss).
-- KEYS[1] lost log (capped stream)
-- ARGV[1] consumer that saw it, ARGV[2..n] entry ids
-- returns the number recorded
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', 10000, '*', 'entry', ARGV[i], 'seen_by', ARGV[1])
end
return #ARGV - 1
