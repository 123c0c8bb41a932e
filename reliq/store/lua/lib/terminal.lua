-- terminal: the final states. An invocation in one is never claimed or run again (claim.lua acks
-- and drops its stream entries, cancel.lua answers 'terminal'); only an operator's redrive moves
-- 'failed' on. The same set as reliq/store/record.py TERMINAL (tests/store/test_libs.py checks).
local TERMINAL = {succeeded = true, failed = true, cancelled = true}

