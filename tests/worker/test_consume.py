"""consume: the own pending list is drained first, a read never asks Redis for more entries
than the limiter has free slots, and normal-only work is read without the read script."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from reliq import Context, Service, Worker, WorkerConfig
from reliq.codec import text
from reliq.store.keys import GROUP, ServiceKeys
from reliq.worker.consume import Reader, Traffic, dispatch, ensure_group, read_once
from reliq.worker.fetch import read_new, wait_for_new

from ..conftest import Names, client, running, wait_until


def noop_worker(names: Names, url: str, block: float = 5.0) -> tuple[Service, ServiceKeys, Worker]:
    """A service with one no-op handler ``job`` and an in-process worker for it, not started."""
    svc = Service(names())

    @svc.handler
    async def job(ctx: Context) -> None:
        return None

    return svc, ServiceKeys(svc.name), Worker(svc, url, config=WorkerConfig(concurrency=10, block=block))


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


async def test_a_read_takes_no_more_entries_than_there_are_free_slots(url: str, names: Names) -> None:
    svc = Service(names())
    gate = asyncio.Event()

    @svc.handler
    async def job(ctx: Context) -> str:
        await gate.wait()
        return ctx.id

    k = ServiceKeys(svc.name)
    w = Worker(svc, url, config=WorkerConfig(concurrency=3, block=0.1))
    flush = asyncio.create_task(w.settler.run())
    try:
        async with client(url) as c:
            ids = [(await c.send(svc.name, "job")).id for _ in range(5)]
            await ensure_group(w.rt, k)
            assert w.rt.limiter.try_acquire(1) == 1  # one slot busy with other work
            await read_once(w.rt, w.executor, k, Reader(own_pending=False))
            assert len(w.rt.inflight) == 2 and w.rt.limiter.free == 0
            assert (await c.redis.xpending(k.stream, GROUP))["pending"] == 2  # asked for 2, not 5
            w.rt.limiter.release(1)
            gate.set()

            async def all_done() -> bool:
                await read_once(w.rt, w.executor, k, Reader(own_pending=False))
                states = [(await c.get(i)).state for i in ids]  # type: ignore[union-attr]
                return states == ["succeeded"] * 5

            await wait_until(all_done, what="every invocation to finish")
            await wait_until(lambda: w.rt.limiter.used == 0, what="every slot to be given back")
    finally:
        flush.cancel()
        w.executor.close()
        await w.client.close()


async def test_normal_only_work_skips_the_read_script_and_other_levels_still_get_their_share(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = Service(names())

    @svc.handler
    async def job(ctx: Context) -> None:
        return None

    k = ServiceKeys(svc.name)
    w = Worker(svc, url, config=WorkerConfig(concurrency=10))
    scripted: list[object] = []
    read = w.rt.client.scripts.read

    async def spy(*args: Any) -> Any:
        scripted.append(args)
        return await read(*args)

    monkeypatch.setattr(w.rt.client.scripts, "read", spy)

    def ids(got: Any) -> dict[int, list[str]]:
        return {level: [text(fields[b"i"]) for _, fields in batch] for level, batch in got}

    try:
        async with client(url) as c:
            await ensure_group(w.rt, k)
            normal = [(await c.send(svc.name, "job")).id for _ in range(3)]
            assert ids(await read_new(w.rt, k, [1, 2, 1])) == {0: normal}
            assert scripted == []  # high and low are empty: one plain XREADGROUP
            high = (await c.send(svc.name, "job", priority="high")).id
            normal = [(await c.send(svc.name, "job")).id for _ in range(4)]
            # quotas normal 1, high 2, low 1: high takes its one entry, normal the slots left
            assert ids(await read_new(w.rt, k, [1, 2, 1])) == {0: normal[:3], 1: [high]}
            assert len(scripted) == 1  # another level has entries: the weighted read rule
    finally:
        w.executor.close()
        await w.client.close()


async def test_a_wake_for_normal_entries_alone_takes_them_in_one_call(url: str, names: Names) -> None:
    """``wait_for_new`` returns the normal stream's new entries when they alone woke it; the read
    after such a wake delivers and claims them with one take.lua call: no XLEN pipeline, no
    XREADGROUP. A wake by another level returns none (the next read keeps the weighted rule)."""
    svc, k, w = noop_worker(names, url)
    pipelines: list[int] = []
    pipeline = w.rt.client.redis.pipeline
    plain: list[int] = []
    xreadgroup = w.rt.client.redis.xreadgroup

    def counting(*args: Any, **kwargs: Any) -> Any:
        pipelines.append(1)
        return pipeline(*args, **kwargs)

    async def reading(*args: Any, **kwargs: Any) -> Any:
        plain.append(1)
        return await xreadgroup(*args, **kwargs)

    w.rt.client.redis.pipeline = counting  # type: ignore[method-assign]
    w.rt.client.redis.xreadgroup = reading  # type: ignore[method-assign]
    try:
        async with client(url) as c:
            await ensure_group(w.rt, k)
            waiting = asyncio.create_task(wait_for_new(w.rt, k, count=10))
            await wait_until(lambda: len(pipelines) == 1, what="the wait to read the groups")
            sent = [a.id for a in await c.send_many(svc.name, "job", [None, None])]
            woke = await asyncio.wait_for(waiting, 10)
            assert [text(f[b"i"]) for _, f in woke] == sent
            reader = Reader(own_pending=False, leads=False)  # a leader would wait after it
            reader.marks.ids = {s: "0-0" for s in k.streams}
            reader.woke = woke
            pipelines.clear()
            assert await read_once(w.rt, w.executor, k, reader) == 2
            for i in sent:
                assert (await c.state(i)) in ("running", "succeeded")  # delivered and claimed
            assert (pipelines, plain) == ([], [])  # no XLEN pipeline, no XREADGROUP
            assert reader.marks.ids[k.stream] == woke[-1][0].decode()  # where the take left the group
            await wait_until(lambda: not w.rt.inflight, what="the runs to end")
            waiting = asyncio.create_task(wait_for_new(w.rt, k, count=10))
            await wait_until(lambda: len(pipelines) == 1, what="the wait to read the groups")
            await c.send(svc.name, "job", priority="high")
            assert await asyncio.wait_for(waiting, 10) == []  # the high stream woke it
    finally:
        w.executor.close()
        await w.client.close()


@pytest.mark.parametrize("readers", [1, 2])
async def test_a_follower_reads_while_the_leading_loop_waits_for_its_claim(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch, readers: int
) -> None:
    """With a backlog, a second read loop of the partition reads and claims while the first
    one's claim is still in flight (readers=2); with readers=1 the claims take turns."""
    from reliq.store.scripts import Scripts

    svc = Service(names())

    @svc.handler
    async def job(ctx: Context) -> str:
        return "ok"

    real = Scripts.claim
    in_flight, peak, calls = 0, 0, 0
    second = asyncio.Event()

    async def claim(self: Scripts, *args: Any, **kwargs: Any) -> Any:
        nonlocal in_flight, peak, calls
        calls += 1
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            if calls == 1:  # hold the first claim until another one starts (or a bounded wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(second.wait(), 1.0)
            else:
                second.set()
            return await real(self, *args, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(Scripts, "claim", claim)
    async with client(url) as c:
        await c.redis.xgroup_create(ServiceKeys(svc.name).stream, GROUP, id="0", mkstream=True)
        ids = [a.id for a in await c.send_many(svc.name, "job", [None] * 40)]
        async with running(svc, url, concurrency=40, batch=5, readers=readers):
            for i in ids:
                assert await c.result(i, 15) == "ok"
    assert calls >= 2
    assert peak == readers


async def test_a_caught_up_leader_waits_from_the_ids_it_knows(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leading loop whose read finds nothing waits for new entries. After reads that found
    entries it waits at once from the ids they moved (and the other levels' ids of its last
    XINFO): no XINFO round trip, and the entries that wait finds are its next read. Entries
    another consumer read past its mark cost one take that gets none, and move the mark past
    them: the next wait blocks, it does not wake again and again. After a wait that led to
    nothing (its ids may be stale), it reads them with XINFO again."""
    from reliq.worker import fetch

    svc, k, w = noop_worker(names, url, block=0.5)
    xinfo: list[int] = []
    delivered = fetch._delivered

    async def counted(*args: Any) -> Any:
        xinfo.append(1)
        return await delivered(*args)

    monkeypatch.setattr(fetch, "_delivered", counted)
    waits: list[int] = []
    xread = w.rt.client.redis.xread

    async def waiting(*args: Any, **kwargs: Any) -> Any:
        waits.append(1)
        return await xread(*args, **kwargs)

    monkeypatch.setattr(w.rt.client.redis, "xread", waiting)
    flush = asyncio.create_task(w.settler.run())
    reader = Reader(own_pending=False)
    try:
        async with client(url) as c:
            await ensure_group(w.rt, k)

            async def read_then_wait(expect: int) -> None:
                """read_once reads ``expect`` entries, then waits; a send ends the wait."""
                before = len(waits)
                reading = asyncio.create_task(read_once(w.rt, w.executor, k, reader))
                await wait_until(lambda: len(waits) > before, what="the wait")
                sent = await c.send(svc.name, "job")
                assert await asyncio.wait_for(reading, 10) == expect
                # the wait found the entry sent (not an older one), the next read's
                assert [text(f[b"i"]) for _, f in reader.woke] == [sent.id]

            await read_then_wait(0)
            assert len(xinfo) == 1  # nothing known yet: XINFO
            await read_then_wait(1)
            assert len(xinfo) == 1  # waited from the mark its take left: no XINFO
            await c.redis.xreadgroup(GROUP, "other", {k.stream: ">"}, count=5)  # takes our next one
            await read_then_wait(1)  # a take that got none: the mark moved past, the wait blocked
            assert len(xinfo) == 1
            assert await read_once(w.rt, w.executor, k, reader) == 1  # its wait times out (block)
            assert (len(xinfo), reader.woke) == (1, [])
            assert await read_once(w.rt, w.executor, k, reader) == 0  # then waits from XINFO again
            assert len(xinfo) == 2
    finally:
        flush.cancel()
        w.executor.close()
        await w.client.close()


async def test_only_a_full_read_sets_the_partitions_traffic(url: str, names: Names) -> None:
    """Followers read behind full reads (a backlog) only: a trickle of work is read by the
    leading loop alone."""
    svc, k, w = noop_worker(names, url)
    flush = asyncio.create_task(w.settler.run())
    traffic = Traffic()
    reader = Reader(own_pending=False, leads=False, traffic=traffic)
    try:
        async with client(url) as c:
            await ensure_group(w.rt, k)
            await c.send_many(svc.name, "job", [None] * 3)
            assert await read_once(w.rt, w.executor, k, reader) == 3  # 10 slots asked for
            assert not traffic.is_set()
            await wait_until(lambda: w.rt.limiter.used == 0, what="the slots to be given back")
            await c.send_many(svc.name, "job", [None] * 15)
            assert await read_once(w.rt, w.executor, k, reader) == 10
            assert traffic.is_set()
    finally:
        flush.cancel()
        w.executor.close()
        await w.client.close()


async def test_an_entry_a_take_names_is_claimed_by_the_read_that_delivered_it(url: str, names: Names) -> None:
    """The leading loop's take names the entries its XREAD found; a follower's ``>`` read can
    deliver one of them first. The take then skips it (it did not deliver it), so the read that
    did must claim it, although the take's claim of that id is under way: left out, it would
    sit in the pending list until a reclaim, a visibility timeout later."""
    svc, k, w = noop_worker(names, url)
    flush = asyncio.create_task(w.settler.run())
    try:
        async with client(url) as c:
            await ensure_group(w.rt, k)
            sent = await c.send(svc.name, "job")
            [[_, found]] = await w.rt.client.redis.xread({k.stream: "0"})  # what the leader's wait found
            w.rt.claiming.add(sent.id)  # ... and its take naming it is under way
            [[_, read]] = await w.rt.client.redis.xreadgroup(GROUP, w.rt.consumer, {k.stream: ">"}, count=10)
            assert await w.rt.limiter.acquire(1) == 1
            assert await dispatch(w.rt, w.executor, k, read, fresh=True) == 1
            pairs = [(text(e), text(f[b"i"])) for e, f in found]
            [skipped] = (await w.rt.client.scripts.take(k, w.rt.consumer, 30_000, pairs)).claims
            assert skipped.status == "skip"
            w.rt.claiming.discard(sent.id)
            assert await c.result(sent.id, 10) is None
    finally:
        flush.cancel()
        w.executor.close()
        await w.client.close()


async def test_a_burst_into_few_slots_starts_everything_without_a_reclaim(url: str, names: Names) -> None:
    """Sends one at a time into a worker with fewer slots than work: its leading loop takes what
    its waits find while the followers read behind full reads. Every invocation runs well within
    the visibility timeout (an entry delivered and never claimed would wait for a reclaim)."""
    svc = Service(names())

    @svc.handler
    async def job(ctx: Context) -> str:
        await asyncio.sleep(0.05)  # holds its slot a while
        return "ok"

    async with client(url) as c, running(svc, url, concurrency=8, readers=3, visibility_timeout=60.0):
        ids = [(await c.send(svc.name, "job")).id for _ in range(150)]
        t0 = time.monotonic()
        for i in ids:
            assert await c.result(i, 30) == "ok"
        assert time.monotonic() - t0 < 30
