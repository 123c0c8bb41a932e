"""The worker's one concurrency limit: the Limiter itself, and running handlers never exceeding
``concurrency`` however many services and partitions feed the worker."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from reliq import App, Context, Service
from reliq.worker.limits import Limiter

from ..conftest import Names, client, running


async def test_acquire_takes_what_is_free_and_waits_when_nothing_is() -> None:
    lim = Limiter(5)
    assert await lim.acquire(3) == 3
    assert lim.try_acquire(10) == 2 and lim.free == 0
    assert lim.try_acquire(1) == 0
    waiter = asyncio.create_task(lim.acquire(4))
    await asyncio.sleep(0)
    assert not waiter.done()
    lim.release(2)
    assert await waiter == 2 and lim.used == 5


async def test_close_wakes_waiters_with_nothing() -> None:
    lim = Limiter(1)
    lim.try_acquire(1)
    waiter = asyncio.create_task(lim.acquire(1))
    await asyncio.sleep(0)
    lim.close()
    assert await waiter == 0
    assert await lim.acquire(1) == 0


def test_releasing_more_than_held_is_a_bug() -> None:
    lim = Limiter(2)
    lim.try_acquire(1)
    with pytest.raises(RuntimeError):
        lim.release(2)


async def test_handlers_of_several_services_and_partitions_never_exceed_concurrency(
    url: str, names: Names
) -> None:
    running_now = 0
    peak = 0
    services = [Service(names(), partitions=3) for _ in range(2)]
    for svc in services:

        @svc.handler
        async def job(ctx: Context) -> None:
            nonlocal running_now, peak
            running_now += 1
            peak = max(peak, running_now)
            await asyncio.sleep(0.02)
            running_now -= 1

    async with client(url) as c:
        for svc in services:
            await c.set_partitions(svc.name, 3)
        ids = [(await c.send(svc.name, "job")).id for svc in services for _ in range(60)]
        # every feed (2 services x 3 partitions, read and reclaim each) finds work at once
        async with running(App(services), url, concurrency=4, batch=50, reclaim_interval=0.05):
            for i in ids:
                await c.result(i, 30)
    assert 2 <= peak <= 4


async def test_concurrency_is_bounded_for_async_and_sync_handlers(url: str, names: Names) -> None:
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


async def test_resize_grows_at_once_and_shrinks_without_preempting() -> None:
    lim = Limiter(2)
    assert lim.try_acquire(2) == 2
    waiter = asyncio.create_task(lim.acquire(5))
    await asyncio.sleep(0)
    assert not waiter.done() and lim.contended
    lim.resize(4)  # growing serves the waiting read at once
    assert await waiter == 2 and lim.used == 4
    lim.resize(1)  # shrinking takes nothing back: 4 stay held, none is free
    assert lim.used == 4 and lim.free == -3 and lim.try_acquire(1) == 0
    later = asyncio.create_task(lim.acquire(3))
    await asyncio.sleep(0)
    assert lim.contended  # a handler waiting in memory still sees the pressure (waits.py)
    lim.release(3)  # used 1 = capacity 1: still nothing free
    await asyncio.sleep(0)
    assert not later.done()
    lim.release(1)
    assert await later == 1 and lim.used == 1  # served up to the new capacity only
    with pytest.raises(ValueError, match="capacity >= 1"):
        lim.resize(0)
