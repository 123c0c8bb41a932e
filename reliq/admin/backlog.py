"""A service's backlog summed over its partitions: what the gateway's ``max_backlog`` limit
compares against (``backlog``) and what ``/metrics`` exports (``counts``).

One pipelined read per call: ``XLEN``, ``XPENDING`` (summary) and two ``ZCARD`` per partition
``0..high-1``. The layout comes from the client's short cache (``Client.partition_keys``): these
numbers are polled, and a partition added a moment ago holds nothing yet. The operator views
(``reliq.admin.overview``) read the same numbers fresh, with everything else they show.
"""

from __future__ import annotations

import msgspec

from reliq.client import Client
from reliq.store.keys import GROUP


class Backlog(msgspec.Struct, frozen=True, kw_only=True):
    """Sums over a service's partitions."""

    stream: int = 0  # stream entries not yet acked: queued or running (the backlog proper)
    pending: int = 0  # of those, delivered to a consumer and not acked yet
    delayed: int = 0  # scheduled sends and retries waiting for their time
    parked: int = 0  # failed for good (dead letters)


async def counts(client: Client, service: str) -> Backlog:
    parts = await client.partition_keys(service)
    async with client.redis.pipeline(transaction=False) as p:
        for k in parts:
            p.xlen(k.stream)
            p.xpending(k.stream, GROUP)
            p.zcard(k.delayed)
            p.zcard(k.parked)
        replies = await p.execute(raise_on_error=False)
    stream = pending = delayed = parked = 0
    for i in range(0, len(replies), 4):
        x, summary, d, pk = replies[i : i + 4]
        stream += int(x)
        pending += int(summary["pending"]) if isinstance(summary, dict) else 0  # no group yet: none
        delayed, parked = delayed + int(d), parked + int(pk)
    return Backlog(stream=stream, pending=pending, delayed=delayed, parked=parked)


async def backlog(client: Client, service: str) -> int:
    """Stream entries of ``service`` not yet acked, over every partition that may hold work."""
    return (await counts(client, service)).stream
