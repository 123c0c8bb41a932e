"""How much work a service holds, summed over its partitions (``0..high-1``): what the gateway's
admission control (backlog) and its ``/metrics`` gauges report. Counts only (XLEN, ZCARD, the
XPENDING summary, the running total of resumptions): a few cheap reads per partition, whatever the backlog."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import msgspec

from reliq.store.commands import RedisClient
from reliq.store.flow import flow_keys
from reliq.store.keys import GROUP, LEVELS, ServiceKeys


class QueueCounts(msgspec.Struct, frozen=True, kw_only=True):
    backlog: int = 0  # stream entries not yet acked (waiting or being worked on)
    pending: int = 0  # of those, delivered to a consumer and not yet acked
    parked: int = 0  # failed for good
    delayed: int = 0  # scheduled, or retrying after a backoff
    suspended: int = 0  # waiting for children, timers or promises without holding a worker
    queued: int = 0  # waiting for a per-key permit (store/flow.py)
    resumed: int = 0  # suspended invocations queued again, in total (a counter)
    levels: dict[str, int] = {}  # the backlog per priority level: high, normal, low


async def backlog(redis: RedisClient, parts: Sequence[ServiceKeys]) -> int:
    async with redis.pipeline(transaction=False) as p:
        for k in parts:
            for stream in k.streams:  # every priority level
                p.xlen(stream)
        return sum(int(n) for n in await p.execute())


async def counts(redis: RedisClient, parts: Sequence[ServiceKeys]) -> QueueCounts:
    xlen = parked = delayed = pending = suspended = resumed = queued = 0
    levels = dict.fromkeys(LEVELS, 0)
    for k in parts:
        async with redis.pipeline(transaction=False) as p:
            p.zcard(k.parked)
            p.zcard(k.delayed)
            p.zcard(k.suspended)
            p.hget(k.minutes, "resumed")
            p.zcard(flow_keys(k)[3])
            for stream in k.streams:
                p.xlen(stream)
            pk, d, s, r, q, *x = await p.execute()
        queued += q
        xlen, parked, delayed, suspended = xlen + sum(x), parked + pk, delayed + d, suspended + s
        for level, n in zip(LEVELS, x, strict=True):
            levels[level] += n
        resumed += int(r or 0)
        for stream in k.streams:
            with contextlib.suppress(Exception):  # no group yet: nothing pending
                pending += (await redis.xpending(stream, GROUP))["pending"]
    return QueueCounts(
        backlog=xlen,
        pending=pending,
        parked=parked,
        delayed=delayed,
        suspended=suspended,
        resumed=resumed,
        queued=queued,
        levels={level: levels[level] for level in ("high", "normal", "low")},
    )
