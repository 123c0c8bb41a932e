"""Worker lifecycle: registry and heartbeats, graceful shutdown and release (the focused tests of
each loop are in tests/worker/)."""

import asyncio
import time

from reliq import App, Context, Service
from reliq.store.keys import SERVICES, ServiceKeys

from .conftest import Names, client, running, wait_until


async def test_registry_and_heartbeats_are_published(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler(max_attempts=4)
    async def place(ctx: Context, amount: int) -> None: ...

    k = ServiceKeys(svc.name)
    async with client(url) as c:
        async with running(svc, url) as w:
            assert svc.name.encode() in await c.redis.smembers(SERVICES)
            raw = await c.redis.hget(k.registry, "place")
            assert raw is not None and b'"integer"' in raw and b'"max_attempts":4' in raw
            hb = await wait_until(lambda: c.redis.get(k.consumer(w.consumer)), what="heartbeat")
            assert w.consumer.encode() in hb
            assert 0 < await c.redis.pttl(k.consumer(w.consumer)) <= 1500
        assert await c.redis.exists(k.consumer(w.consumer)) == 0  # cleared on clean shutdown
        await c.redis.srem(SERVICES, svc.name)


async def test_each_services_heartbeat_carries_that_services_inflight_and_processed(
    url: str, names: Names
) -> None:
    busy, idle = Service(names("busy")), Service(names("idle"))
    release = asyncio.Event()

    @busy.handler
    async def hold(ctx: Context) -> None:
        await release.wait()

    @idle.handler
    async def quick(ctx: Context, n: int) -> int:
        return n

    async with client(url) as c:
        async with running(App([busy, idle]), url, heartbeat_interval=0.1) as w:
            held = await c.send(busy.name, "hold")
            for n in range(3):
                assert await c.result((await c.send(idle.name, "quick", n)).id, 10) == n

            async def beats() -> dict[str, tuple[int | None, int | None, int | None]] | None:
                got = {}
                for s in (busy.name, idle.name):
                    hb = (await c.heartbeats(s, [w.consumer]))[w.consumer]
                    got[s] = (hb.inflight, hb.processed, hb.concurrency) if hb else (None, None, None)
                ok = got[busy.name][:2] == (1, 0) and got[idle.name][:2] == (0, 3)
                return got if ok else None

            got = await wait_until(beats, what="per-service heartbeat numbers")
            assert got[busy.name][2] == got[idle.name][2] and (got[busy.name][2] or 0) > 0  # shared limit
            release.set()
            await c.result(held.id, 10)
        for s in (busy.name, idle.name):
            await c.redis.srem(SERVICES, s)


async def test_graceful_shutdown_lets_inflight_handlers_finish(url: str, names: Names) -> None:
    svc = Service(names())
    started = asyncio.Event()

    @svc.handler
    async def slow(ctx: Context) -> str:
        started.set()
        await asyncio.sleep(0.5)
        return "finished"

    async with client(url) as c:
        async with running(svc, url, shutdown_grace=10.0):
            acc = await c.send(svc.name, "slow")
            await asyncio.wait_for(started.wait(), 10)
        # the worker has stopped; the handler finished within the grace period
        assert await c.result(acc.id, 0.5) == "finished"


async def test_unfinished_work_is_released_at_shutdown_and_taken_over_at_once(url: str, names: Names) -> None:
    svc = Service(names())
    started = asyncio.Event()
    runs: list[int] = []

    @svc.handler
    async def long(ctx: Context) -> int:
        runs.append(ctx.attempt)
        started.set()
        if len(runs) == 1:
            await asyncio.sleep(3600)
        return len(runs)

    async with client(url) as c:
        async with running(svc, url, shutdown_grace=0.2, visibility_timeout=60.0):
            acc = await c.send(svc.name, "long")
            await asyncio.wait_for(started.wait(), 10)
        inv = await c.get(acc.id)
        assert inv is not None and inv.state == "pending" and inv.owner is None  # released, never acked
        t0 = time.monotonic()
        async with running(svc, url, visibility_timeout=60.0, reclaim_interval=0.1):
            assert await c.result(acc.id, 10) == 2
        assert time.monotonic() - t0 < 10  # released entries don't wait for the 60 s timeout
        inv = await c.get(acc.id)
        assert inv is not None and inv.crashes == 0  # a release is not a crash
