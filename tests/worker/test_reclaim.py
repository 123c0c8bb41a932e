"""reclaim: entries left idle in a dead consumer's pending list are taken over (epoch bumped),
never more than the free slots; entries deleted while pending are recorded as lost."""

from __future__ import annotations

import asyncio

import pytest

from reliq import Context, Service, Worker, WorkerConfig
from reliq.store.keys import GROUP, ServiceKeys
from reliq.worker.consume import ensure_group
from reliq.worker.reclaim import reclaim_loop, reclaim_once

from ..conftest import Names, client, running, wait_until


async def test_a_dead_consumers_entry_is_taken_over_with_a_new_epoch(url: str, names: Names) -> None:
    svc = Service(names())
    seen: list[tuple[int, int]] = []

    @svc.handler
    async def job(ctx: Context) -> str:
        seen.append((ctx.attempt, ctx.epoch))
        return "ran"

    k = ServiceKeys(svc.name)
    async with client(url) as c:
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        acc = await c.send(svc.name, "job")
        [[_, [(eid, _)]]] = await c.redis.xreadgroup(GROUP, "dead", {k.stream: ">"}, count=1)
        [claimed] = await c.scripts.claim(k, "dead", 300, [(eid.decode(), acc.id)])  # it ran, then died
        async with running(svc, url, visibility_timeout=0.3, reclaim_interval=0.05):
            assert await c.result(acc.id, 10) == "ran"
        inv = await c.get(acc.id)
        assert inv is not None and inv.crashes == 1  # the dead worker's run counts as a crash
        assert seen == [(1, claimed.epoch + 1)]


async def test_reclaim_takes_no_more_entries_than_there_are_free_slots(url: str, names: Names) -> None:
    svc = Service(names())
    gate = asyncio.Event()

    @svc.handler
    async def job(ctx: Context) -> None:
        await gate.wait()

    k = ServiceKeys(svc.name)
    w = Worker(svc, url, config=WorkerConfig(concurrency=3, visibility_timeout=0.05))
    flush = asyncio.create_task(w.settler.run())
    try:
        async with client(url) as c:
            await ensure_group(w.rt, k)
            ids = [(await c.send(svc.name, "job")).id for _ in range(4)]
            await c.redis.xreadgroup(GROUP, "dead", {k.stream: ">"}, count=4)

            async def idle_past_the_timeout() -> bool:
                pending = await c.redis.xpending_range(k.stream, GROUP, "-", "+", 10)
                return len(pending) == 4 and all(p["time_since_delivered"] > 50 for p in pending)

            await wait_until(idle_past_the_timeout, what="the dead consumer's entries to go idle")
            assert w.rt.limiter.try_acquire(3) == 3
            assert await reclaim_once(w.rt, w.executor, k, "0-0") == ("0-0", 0)  # no free slot
            w.rt.limiter.release(1)
            _, started = await reclaim_once(w.rt, w.executor, k, "0-0")
            assert started == 1 and len(w.rt.inflight) == 1
            pending = await c.redis.xpending_range(k.stream, GROUP, "-", "+", 10)
            assert sorted(p["consumer"] for p in pending) == [b"dead"] * 3 + [w.consumer.encode()]
            w.rt.limiter.release(2)
            gate.set()

            async def all_done() -> bool:
                await reclaim_once(w.rt, w.executor, k, "0-0")
                return [(await c.get(i)).state for i in ids] == ["succeeded"] * 4  # type: ignore[union-attr]

            await wait_until(all_done, what="every entry to be reclaimed and run")
    finally:
        flush.cancel()
        w.executor.close()
        await w.client.close()


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


async def test_a_round_that_could_take_no_slot_sleeps_instead_of_spinning(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slot can be free while a read still queues for it (woken, not yet run): try_acquire gives
    nothing then. Reclaim, in the middle of a scan (cursor not 0-0), used to go round again at
    once without an await, so the read never ran and the worker spun for ever (seen under load
    in bench_latency: 99 handlers in flight, none finishing, 100% CPU)."""
    svc = Service(names())

    @svc.handler
    async def job(ctx: Context) -> None: ...

    k = ServiceKeys(svc.name)
    w = Worker(svc, url, config=WorkerConfig(concurrency=3, visibility_timeout=0.05, reclaim_interval=0.05))
    real, calls, allowed = w.rt.limiter.try_acquire, 0, 3  # the first round (high, normal, low) is real

    def try_acquire(n: int) -> int:
        nonlocal calls
        calls += 1
        if calls > 10_000:
            raise AssertionError("reclaim went round 10,000 times without sleeping")
        return real(n) if calls <= allowed else 0  # then: a read is queued ahead

    monkeypatch.setattr(w.rt.limiter, "try_acquire", try_acquire)
    flush = asyncio.create_task(w.settler.run())
    loop: asyncio.Task[None] | None = None
    try:
        async with client(url) as c:
            await ensure_group(w.rt, k)
            ids = [(await c.send(svc.name, "job")).id for _ in range(5)]
            await c.redis.xreadgroup(GROUP, "dead", {k.stream: ">"}, count=5)

            async def idle_past_the_timeout() -> bool:
                pending = await c.redis.xpending_range(k.stream, GROUP, "-", "+", 10)
                return len(pending) == 5 and all(p["time_since_delivered"] > 50 for p in pending)

            await wait_until(idle_past_the_timeout, what="the dead consumer's entries to go idle")
            loop = asyncio.create_task(reclaim_loop(w.rt, w.executor, k))

            async def succeeded(n: int) -> bool:
                return [(await c.get(i)).state for i in ids].count("succeeded") == n  # type: ignore[union-attr]

            await wait_until(lambda: succeeded(3), what="the first round's 3 entries to run")
            await wait_until(lambda: calls >= 3 * 6 or loop.done(), what="5 more rounds without a slot")
            assert not loop.done(), loop.exception()
            assert calls < 200 and await succeeded(3)
            pending = await c.redis.xpending_range(k.stream, GROUP, "-", "+", 10)
            assert [p["consumer"] for p in pending] == [b"dead"] * 2  # the scan stopped mid-way
            allowed = 1_000_000  # the queued read has run: slots can be taken again
            await wait_until(lambda: succeeded(5), what="the scan to resume and reclaim the rest")
    finally:
        w.rt.stopping.set()
        if loop is not None:
            await asyncio.wait_for(loop, 10)
        flush.cancel()
        w.executor.close()
        await w.client.close()
