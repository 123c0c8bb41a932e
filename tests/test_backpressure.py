"""Backpressure (reliq.store.intake, lua/lib/backpressure.lua): past a service's max_queued,
register.lua refuses new invocations and writes nothing; re-sends of accepted keys answer as
before; a batch refuses only the items over the limit; an operator's override applies at once."""

from __future__ import annotations

import asyncio

import pytest

from reliq import Backpressure, Client, Context, Service
from tests.conftest import Names, client, running


async def queued(c: Client, svc: str) -> int:
    k = c.keys(svc)
    return sum([await c.redis.xlen(s) for s in k.streams]) + await c.redis.zcard(k.delayed)


@pytest.mark.semantics
async def test_sends_past_max_queued_are_refused_and_leave_nothing(url: str, names: Names) -> None:
    svc = Service(names(), max_queued=3)
    gate = asyncio.Event()

    @svc.handler
    async def job(ctx: Context, n: int) -> int:
        await gate.wait()
        return n

    async with running(svc, url, concurrency=1), client(url) as c:  # the worker publishes the limit
        ids = [(await c.send(svc.name, "job", i, key=f"k{i}")).id for i in range(3)]
        with pytest.raises(Backpressure) as refused:
            await c.send(svc.name, "job", 3, key="k3")
        assert refused.value.retry_after > 0
        assert not await c.redis.exists(c.keys(svc.name).inv(await c.id_for(svc.name, "k3")))
        assert await queued(c, svc.name) == 3  # no entry either (the running one still counts)
        again = await c.send(svc.name, "job", 0, key="k0")  # an accepted key answers as before
        assert (again.id, again.status) == (ids[0], "previously_accepted")

        # a batch (the gateway's group commit) refuses only the items over the limit
        await c.set_max_queued(svc.name, 5)
        regs = [await c.prepare(svc.name, "job", b"%d" % i) for i in range(10, 13)]
        got = await c.register_many(c.where(regs[0].id), regs)
        assert [g.status for g in got] == ["accepted", "accepted", "backpressure"]
        assert not await c.redis.exists(c.keys(svc.name).inv(regs[2].id))
        ids += [r.id for r in regs[:2]]

        await c.set_max_queued(svc.name, "none")  # lifted live
        ids.append((await c.send(svc.name, "job", 20)).id)
        await c.set_max_queued(svc.name, "code")  # the code's 3 again
        with pytest.raises(Backpressure):
            await c.send(svc.name, "job", 21)
        gate.set()
        for i in ids:
            await c.result(i, timeout=15)
