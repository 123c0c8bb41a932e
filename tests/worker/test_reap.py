"""Dead consumers are removed from the consumer group (one per worker process ever started would
otherwise pile up), atomically: a consumer that holds a pending entry is never deleted."""

from __future__ import annotations

import pytest

from reliq import Client, Context, Service
from reliq.store.keys import GROUP

from ..conftest import Names, running, wait_until


async def consumers(c: Client, stream: str) -> dict[str, int]:
    return {i["name"].decode(): int(i["pending"]) for i in await c.redis.xinfo_consumers(stream, GROUP)}


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_reap_deletes_idle_empty_consumers_and_keeps_those_holding_entries(
    url: str, names: Names
) -> None:
    async with Client(url) as c:
        k = c.keys(names())
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        await c.redis.xreadgroup(GROUP, "ghost-empty", {k.stream: ">"}, count=1)
        await c.redis.xadd(k.stream, {"i": "x"})
        await c.redis.xreadgroup(GROUP, "ghost-holding", {k.stream: ">"}, count=1)
        assert await consumers(c, k.stream) == {"ghost-empty": 0, "ghost-holding": 1}
        assert await c.scripts.reap(k, min_idle_ms=3_600_000) == []  # not idle long enough
        assert await c.scripts.reap(k, min_idle_ms=0) == ["ghost-empty"]
        assert await consumers(c, k.stream) == {"ghost-holding": 1}
        assert (await c.redis.xpending(k.stream, GROUP))["pending"] == 1  # its entry is still tracked
        await c.redis.delete(k.stream)


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_a_running_worker_reaps_dead_consumers_of_every_partition(url: str, names: Names) -> None:
    svc = Service(names(), partitions=2)

    @svc.handler
    async def job(ctx: Context) -> None: ...

    async with Client(url) as c:
        await c.set_partitions(svc.name, 2)
        parts = await c.partition_keys(svc.name)
        for k in parts:
            await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
            await c.redis.xreadgroup(GROUP, "dead-worker", {k.stream: ">"}, count=1)
        async with running(svc, url, reap_after=0.05, reap_every=0.05):

            async def reaped() -> bool:
                found = [await consumers(c, k.stream) for k in parts]
                return all("dead-worker" not in f for f in found)

            await wait_until(reaped, what="the dead consumer to be removed from both partitions")
