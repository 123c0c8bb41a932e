"""Worker lifecycle: registry and heartbeats, own-PEL drain on restart, graceful shutdown and
release, lost entries reported by XAUTOCLAIM, scheduling of delayed sends."""

import asyncio
import time

from reliq import Context, Service
from reliq.store.keys import GROUP, SERVICES, ServiceKeys

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


async def test_a_restarted_worker_drains_its_own_pending_entries_first(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def job(ctx: Context) -> str:
        return "ran"

    k = ServiceKeys(svc.name)
    async with client(url) as c:
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        acc = await c.send(svc.name, "job")
        # a previous life of consumer "stable" read the entry and died before running it
        await c.redis.xreadgroup(GROUP, "stable", {k.stream: ">"}, count=1)
        t0 = time.monotonic()
        async with running(svc, url, consumer="stable", visibility_timeout=60.0):
            assert await c.result(acc.id, 10) == "ran"
        assert time.monotonic() - t0 < 10  # not via reclaim, which would need 60 s


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


async def test_entries_deleted_while_pending_are_recorded_as_lost(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def job(ctx: Context) -> None: ...

    k = ServiceKeys(svc.name)
    async with client(url) as c:
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        acc = await c.send(svc.name, "job")
        [[_, entries]] = await c.redis.xreadgroup(GROUP, "ghost", {k.stream: ">"}, count=1)
        eid = entries[0][0]
        await c.redis.xdel(k.stream, eid)  # e.g. an operator trimmed the stream
        async with running(svc, url, visibility_timeout=0.3, reclaim_interval=0.1):
            lost = await wait_until(lambda: c.redis.xrange(k.lost), what="lost entry recorded")
        assert lost[0][1][b"entry"] == eid
        assert (await c.redis.xpending(k.stream, GROUP))["pending"] == 0
        await c.cancel(acc.id)


async def test_delayed_sends_run_after_their_delay(url: str, names: Names) -> None:
    svc = Service(names())
    ran_at: list[float] = []

    @svc.handler
    async def job(ctx: Context) -> None:
        ran_at.append(time.monotonic())

    async with running(svc, url), client(url) as c:
        t0 = time.monotonic()
        acc = await c.send(svc.name, "job", delay=0.5)
        assert (await c.get(acc.id)).state == "scheduled"  # type: ignore[union-attr]
        await c.result(acc.id, 10)
        assert ran_at[0] - t0 >= 0.5


async def test_concurrency_is_bounded_for_async_and_sync_handlers(url: str, names: Names) -> None:
    import threading

    svc = Service(names())
    lock = threading.Lock()
    now = {"async": 0, "sync": 0}
    peak = {"async": 0, "sync": 0}

    def enter(kind: str) -> None:
        with lock:
            now[kind] += 1
            peak[kind] = max(peak[kind], now[kind])

    def leave(kind: str) -> None:
        with lock:
            now[kind] -= 1

    @svc.handler
    async def a(ctx: Context) -> None:
        enter("async")
        await asyncio.sleep(0.05)
        leave("async")

    @svc.handler
    def s(ctx: object) -> None:
        enter("sync")
        time.sleep(0.05)
        leave("sync")

    async with running(svc, url, concurrency=3, sync_concurrency=2), client(url) as c:
        ids = [(await c.send(svc.name, h)).id for h in ["a"] * 12 + ["s"] * 12]
        for i in ids:
            await c.result(i, 20)
    assert peak["sync"] == 2  # the thread pool's own limit
    assert 2 <= peak["async"] <= 3  # never more than `concurrency` in flight
