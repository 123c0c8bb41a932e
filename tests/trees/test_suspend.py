"""Durable function trees: a remote wait suspends the invocation instead of holding a worker slot;
the child's completion wakes the parent, which replays to where it stopped."""

from __future__ import annotations

import asyncio

import pytest

from reliq import App, Context, Service

from ..conftest import Names, client, running, wait_until


async def test_parents_outnumbering_slots_all_complete(url: str, names: Names) -> None:
    """The starvation case: 200 parents, each calling one child, one worker with 4 slots. With
    blocking calls none finishes (the slots are held by parents waiting for children that cannot
    get one); with suspension all do."""
    svc = Service(names("tree"))

    @svc.handler
    async def child(ctx: Context, n: int) -> int:
        return n * 2

    @svc.handler
    async def parent(ctx: Context, n: int) -> int:
        return int(await ctx.call(svc.name, "child", n)) + 1

    async with running(svc, url, concurrency=4), client(url) as c:
        ids = [(await c.send(svc.name, "parent", n)).id for n in range(200)]
        results = await asyncio.gather(*(c.result(i, timeout=60) for i in ids))
        assert results == [n * 2 + 1 for n in range(200)]
        suspended = 0
        for i in ids[:20]:
            inv = await c.get(i)
            assert inv is not None and inv.state == "succeeded"
            suspended += inv.suspensions
        assert suspended > 0  # with 4 slots and 200 parents some must have suspended


@pytest.mark.semantics  # parents and children in different slots on a Cluster
async def test_three_levels_and_a_gather_of_ten(url: str, names: Names) -> None:
    top, mid, leaf = Service(names("top")), Service(names("mid")), Service(names("leaf"))

    @leaf.handler
    async def square(ctx: Context, n: int) -> int:
        return n * n

    @mid.handler
    async def fan(ctx: Context, n: int) -> int:
        parts = await asyncio.gather(*(ctx.call(leaf.name, "square", n + i) for i in range(10)))
        return sum(parts)

    @top.handler
    async def root(ctx: Context, n: int) -> list[int]:
        return [await ctx.call(mid.name, "fan", n), await ctx.call(mid.name, "fan", n + 1)]

    app = App([top, mid, leaf])
    async with running(app, url, concurrency=3, suspend_after=0.05), client(url) as c:
        ids = [(await c.send(top.name, "root", n)).id for n in range(10)]
        got = await asyncio.gather(*(c.result(i, timeout=60) for i in ids))
        fan = [sum((n + i) ** 2 for i in range(10)) for n in range(11)]
        want = [[fan[n], fan[n + 1]] for n in range(10)]
        assert got == want
        root_doc = await c.get(ids[0])
        assert root_doc is not None and len(root_doc.children) == 2
        for mid_id in root_doc.children:
            m = await c.get(mid_id)
            assert m is not None and m.state == "succeeded" and len(m.children) == 10


async def test_a_fast_child_costs_no_suspension(url: str, names: Names) -> None:
    """Within the grace period the parent waits in memory: no suspension, no replay."""
    svc = Service(names("fast"))

    @svc.handler
    async def child(ctx: Context) -> str:
        return "ok"

    @svc.handler
    async def parent(ctx: Context) -> str:
        return str(await ctx.call(svc.name, "child"))

    async with running(svc, url, concurrency=10, suspend_after=5.0), client(url) as c:
        acc = await c.send(svc.name, "parent")
        assert await c.result(acc.id, 10) == "ok"
        inv = await c.get(acc.id)
        assert inv is not None and inv.suspensions == 0 and inv.deliveries == 1


async def test_send_now_await_later(url: str, names: Names) -> None:
    svc = Service(names("later"))

    @svc.handler
    async def child(ctx: Context, n: int) -> int:
        return n + 100

    @svc.handler
    async def parent(ctx: Context) -> list[int]:
        a = await ctx.send(svc.name, "child", 1)
        b = await ctx.send(svc.name, "child", 2)
        with pytest.raises(ValueError):
            await ctx.result(f"{svc.name}.abcdefghijklmnopqrstuvwxyz")  # not a child of this one
        return [await ctx.result(b), await ctx.result(a)]

    async with running(svc, url, concurrency=2, suspend_after=0.0), client(url) as c:
        acc = await c.send(svc.name, "parent")
        assert await c.result(acc.id, 20) == [102, 101]
        inv = await c.get(acc.id)
        assert inv is not None and len(inv.children) == 2


async def test_an_attempt_does_not_suspend_while_a_step_runs(url: str, names: Names) -> None:
    """A step running next to a durable wait (gather) finishes and is journaled before the attempt
    suspends: its effect is not repeated by the replay."""
    svc = Service(names("busy"))
    effects: list[str] = []

    @svc.handler
    async def slow_effect(ctx: Context) -> str:
        async def effect() -> str:
            await asyncio.sleep(0.3)  # longer than the grace below
            effects.append(ctx.id)
            return "done"

        got = await asyncio.gather(ctx.step("effect", effect), ctx.promise("go"))
        return str(got[0])

    async with running(svc, url, suspend_after=0.0), client(url) as c:
        acc = await c.send(svc.name, "slow_effect")

        async def suspended() -> bool:
            return await c.state(acc.id) == "suspended"

        await wait_until(suspended, what="suspended after the step")
        await c.resolve(acc.id, "go", 1)
        assert await c.result(acc.id, 10) == "done"
    assert len(effects) == 1
