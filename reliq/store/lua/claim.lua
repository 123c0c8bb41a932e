-- claim: start a read batch the worker delivered to itself (XREADGROUP): lib/claiming.lua.
-- KEYS[1] stream, KEYS[2..n+1] invocation records (one per entry, same order as the entry ids),
-- KEYS[n+2..n+7] the flow keys (optional)
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] lease ms, ARGV[4] claim token, ARGV[5..n+4] entry ids
-- returns 11 values per entry (lib/claiming.lua)
-- uses: claiming
return claim_batch(nil)
