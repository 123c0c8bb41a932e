"""Backpressure (reliq.store.intake, lua/lib/backpressure.lua): past a service's max_queued,
register.lua refuses new invocations and writes nothing; re-sends of accepted keys answer as
before; a batch refuses only the items over the limit; an operator's override applies at once."""

from __future__ import annotations

import asyncio

import pytest

from reliq import Backpressure, Client, Context, Service
from reliq.admin.intake import intake
from tests.conftest import Names, client, running


async def queued(c: Client, svc: str) -> int:
    k = c.keys(svc)
    return sum([await c.redis.xlen(s) for s in k.streams]) + await c.redis.zcard(k.delayed)


@pytest.mark.semantics
async def test_invocations_queued_behind_a_keys_holder_count_towards_max_queued(
    url: str, names: Names
) -> None:
    """A hot key's line (queued, no stream entry yet) is backlog like any other: without it in
    the count, sends of one key were accepted without bound (QA, session 15)."""
    svc = Service(names(), max_queued=3)
    gate = asyncio.Event()

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def post(ctx: Context, req: dict[str, str]) -> None:
        await gate.wait()

    async with running(svc, url, concurrency=5), client(url) as c:
        ids = [(await c.send(svc.name, "post", {"account": "a1"})).id for _ in range(3)]
        assert [await c.state(i) for i in ids[1:]] == ["queued", "queued"]  # in a1's line
        with pytest.raises(Backpressure):
            await c.send(svc.name, "post", {"account": "a1"})
        now = await intake(c, svc.name)
        assert (now.waiting, now.queued) == (2, 3)
        gate.set()
        for i in ids:
            await c.result(i, timeout=15)


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
