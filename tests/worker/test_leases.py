"""leases: renewal keeps a long handler's entry from being reclaimed; a lease found lost cancels
the local handler, which then commits nothing; a durable cancel flag seen by renewal cancels it."""

from __future__ import annotations

import asyncio

from reliq import Context, Service
from reliq.store.keys import GROUP, ServiceKeys
from reliq.worker.leases import renew_once

from ..conftest import Names, client, running, wait_until


async def test_a_handler_running_past_the_visibility_timeout_keeps_its_lease(url: str, names: Names) -> None:
    svc = Service(names())
    runs: list[int] = []

    @svc.handler
    async def slow(ctx: Context) -> str:
        runs.append(ctx.epoch)
        await asyncio.sleep(1.5)  # 5x the visibility timeout
        return "done"

    async with client(url) as c:
        async with running(svc, url, visibility_timeout=0.3, reclaim_interval=0.05):
            acc = await c.send(svc.name, "slow")
            assert await c.result(acc.id, 10) == "done"
        inv = await c.get(acc.id)
        assert inv is not None and inv.crashes == 0
    assert len(runs) == 1  # its own reclaim loop never took it back


async def test_a_lost_lease_cancels_the_handler_and_it_commits_nothing(url: str, names: Names) -> None:
    svc = Service(names())
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @svc.handler
    async def job(ctx: Context) -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    k = ServiceKeys(svc.name)
    async with client(url) as c, running(svc, url, visibility_timeout=60.0) as w:
        acc = await c.send(svc.name, "job")
        await asyncio.wait_for(started.wait(), 10)
        [entry] = await c.redis.xpending_range(k.stream, GROUP, "-", "+", 1)
        eid = entry["message_id"].decode()
        # another worker takes the entry over: its claim bumps the epoch
        await c.redis.xclaim(k.stream, GROUP, "thief", 0, [eid])
        [claimed] = await c.scripts.claim(k, "thief", 60000, [(eid, acc.id)])
        epoch = claimed.epoch
        await renew_once(w.rt)
        await asyncio.wait_for(cancelled.wait(), 10)
        await wait_until(lambda: not w.rt.holds(acc.id), what="the handler to be dropped")
        inv = await c.get(acc.id)
        assert inv is not None and inv.state == "running" and inv.owner == "thief"
        assert w.settler.fenced == 0 and w.settler.given_up == 0  # it did not even try to write
        assert await c.scripts.complete(k, 60000, [(acc.id, eid, epoch, "succeeded", b'"thief"')]) == ["ok"]
        assert await c.result(acc.id, 1) == "thief"


async def test_a_cancel_flag_seen_by_renewal_cancels_the_handler(url: str, names: Names) -> None:
    svc = Service(names())
    started = asyncio.Event()

    @svc.handler
    async def job(ctx: Context) -> None:
        started.set()
        await asyncio.sleep(3600)

    k = ServiceKeys(svc.name)
    async with client(url) as c, running(svc, url, visibility_timeout=60.0) as w:
        acc = await c.send(svc.name, "job")
        await asyncio.wait_for(started.wait(), 10)
        await c.redis.hset(k.inv(acc.id), "cancel", 1)  # the durable flag, without the pub/sub
        await renew_once(w.rt)

        async def cancelled() -> bool:
            inv = await c.get(acc.id)
            return inv is not None and inv.state == "cancelled"

        await wait_until(cancelled, what="the invocation to end cancelled")
