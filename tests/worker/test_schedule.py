"""schedule: due invocations move from the delayed set to the stream, once, whoever promotes."""

from __future__ import annotations

import asyncio
import time

from reliq import Client, Context, Service, Worker
from reliq.worker.schedule import MAX_SLEEP, promote_once

from ..conftest import Names, client, running, wait_until


async def _passed(c: Client, at_ms: float | None) -> bool:
    return at_ms is not None and await c.server_time_ms() > at_ms


async def test_promote_moves_what_is_due_once_and_says_how_long_to_sleep(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def job(ctx: Context) -> None: ...

    w = Worker(svc, url)
    try:
        async with client(url) as c:
            k = c.keys(svc.name)
            due = await c.send(svc.name, "job", delay=0.05)
            later = await c.send(svc.name, "job", delay=0.5)
            offset = await c.server_time_ms() - int(time.time() * 1000)
            assert 0 < await promote_once(w.rt, k, offset) <= 0.05  # not due yet: sleep until it is
            due_at = await c.redis.zscore(k.delayed, due.id)
            await wait_until(lambda: _passed(c, due_at), what="the first due time to pass")
            offset = await c.server_time_ms() - int(time.time() * 1000)
            sleeps = await asyncio.gather(*(promote_once(w.rt, k, offset) for _ in range(3)))
            assert await c.redis.xlen(k.stream) == 1  # promoted once, by one of the three
            assert (await c.get(due.id)).state == "pending"  # type: ignore[union-attr]
            assert (await c.get(later.id)).state == "scheduled"  # type: ignore[union-attr]
            assert all(0 < s <= MAX_SLEEP for s in sleeps)
            for i in (due.id, later.id):
                await c.cancel(i)
            await c.redis.delete(k.stream)
    finally:
        w.executor.close()
        await w.client.close()


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
