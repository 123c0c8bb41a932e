"""What flows up and down a tree: durable timers, a child's failure (caught to compensate, or
escaping: the parent is parked ``child-failed`` after one attempt), durable deadlines, the
nondeterminism guard, and cancellation of a parent reaching its children."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from reliq import (
    App,
    Cancelled,
    ChildFailed,
    Context,
    InvocationCancelled,
    InvocationFailed,
    Service,
    SyncContext,
    Terminal,
)

from ..conftest import Names, client, running, wait_until


async def test_a_durable_sleep_suspends_and_a_timer_wakes_it(url: str, names: Names) -> None:
    svc = Service(names("nap"))
    runs: Counter[str] = Counter()

    @svc.handler
    async def nap(ctx: Context) -> str:
        before = await ctx.step("before", lambda: "b")
        runs["body"] += 1
        await ctx.sleep(0.4)
        return f"{before}-woke"

    async with running(svc, url, suspend_after=0.0), client(url) as c:
        acc = await c.send(svc.name, "nap")

        async def sleeping() -> bool:
            inv = await c.get(acc.id)
            return inv is not None and inv.state == "suspended" and inv.waits[0].kind == "timer"

        await wait_until(sleeping, what="suspended on its timer")
        inv = await c.get(acc.id)
        assert inv is not None and inv.waits[0].due is not None
        assert await c.result(acc.id, 10) == "b-woke"
        assert runs["body"] == 2  # the first run, and the replay after the timer


async def test_a_failed_child_caught_by_the_parent_is_compensated(url: str, names: Names) -> None:
    svc = Service(names("comp"))
    undone: Counter[str] = Counter()

    @svc.handler(max_attempts=1)
    async def charge(ctx: Context) -> None:
        raise Terminal("card declined", status=402)

    @svc.handler
    async def order(ctx: Context) -> str:
        try:
            await ctx.call(svc.name, "charge")
        except ChildFailed as e:
            await ctx.step("release stock", lambda: undone.update(["stock"]))
            return f"compensated {e.state} {e.error.get('message')}"
        return "charged"

    async with running(svc, url, suspend_after=0.0), client(url) as c:
        acc = await c.send(svc.name, "order")
        assert await c.result(acc.id, 10) == "compensated failed card declined"
    assert undone == {"stock": 1}


async def test_an_escaping_child_failure_parks_the_parent_after_one_attempt(url: str, names: Names) -> None:
    svc = Service(names("esc"))

    @svc.handler(max_attempts=1)
    async def child(ctx: Context) -> None:
        raise Terminal("no")

    @svc.handler(max_attempts=5, backoff_base=0.01)
    async def parent(ctx: Context) -> None:
        await ctx.call(svc.name, "child")

    async with running(svc, url, suspend_after=0.0), client(url) as c:
        acc = await c.send(svc.name, "parent")
        with pytest.raises(InvocationFailed):
            await c.result(acc.id, 10)
        inv = await c.get(acc.id)
        assert inv is not None and inv.state == "failed" and inv.reason == "child-failed"
        assert inv.attempt == 1 and inv.error is not None and inv.error.type == "ChildFailed"


async def test_a_deadline_passes_the_child_is_cancelled_and_the_parent_sees_timeout(
    url: str, names: Names
) -> None:
    svc = Service(names("dl"))

    @svc.handler
    async def slow(ctx: Context) -> str:
        await ctx.promise("never")
        return "done"

    @svc.handler
    async def parent(ctx: Context) -> str:
        try:
            return str(await ctx.call(svc.name, "slow", timeout=0.3))
        except TimeoutError:
            return "deadline"

    async with running(svc, url, suspend_after=0.0), client(url) as c:
        acc = await c.send(svc.name, "parent")
        assert await c.result(acc.id, 10) == "deadline"
        inv = await c.get(acc.id)
        assert inv is not None
        [kid] = inv.children
        with pytest.raises(InvocationCancelled):
            await c.result(kid, 10)


async def test_a_replay_that_calls_another_child_is_parked_nondeterministic(url: str, names: Names) -> None:
    svc = Service(names("nd"))
    flips: Counter[str] = Counter()

    @svc.handler
    async def a(ctx: Context) -> int:
        return 1

    @svc.handler
    async def b(ctx: Context) -> int:
        return 2

    @svc.handler
    async def parent(ctx: Context) -> int:
        flips["runs"] += 1
        # the code "changed" between the first run and the replay: another child at position 1
        target = "a" if flips["runs"] == 1 else "b"
        return int(await ctx.call(svc.name, target, None, key="same"))

    async with running(svc, url, suspend_after=0.0, concurrency=1), client(url) as c:
        acc = await c.send(svc.name, "parent")
        with pytest.raises(InvocationFailed):
            await c.result(acc.id, 10)
        inv = await c.get(acc.id)
        assert inv is not None and inv.reason == "nondeterminism"


async def test_cancelling_a_parent_cancels_its_children_and_lets_it_compensate(
    url: str, names: Names
) -> None:
    parent_svc, child_svc = Service(names("cp")), Service(names("cc"))
    compensated: Counter[str] = Counter()

    @child_svc.handler
    async def wait(ctx: Context) -> None:
        await ctx.promise("never")

    @parent_svc.handler
    async def parent(ctx: Context) -> str:
        try:
            await asyncio.gather(ctx.call(child_svc.name, "wait"), ctx.call(child_svc.name, "wait"))
        except Cancelled:
            await ctx.step("undo", lambda: compensated.update(["undo"]))
            raise
        return "not reached"

    async with running(App([parent_svc, child_svc]), url, suspend_after=0.0), client(url) as c:
        acc = await c.send(parent_svc.name, "parent")

        async def suspended() -> bool:
            inv = await c.get(acc.id)
            return inv is not None and inv.state == "suspended" and len(inv.children) == 2

        await wait_until(suspended, what="the parent suspended on two children")
        inv = await c.get(acc.id)
        assert inv is not None
        assert await c.cancel(acc.id) == "cancelling"
        with pytest.raises(InvocationCancelled):
            await c.result(acc.id, 10)
        for kid in inv.children:
            with pytest.raises(InvocationCancelled):
                await c.result(kid, 10)
    assert compensated == {"undo": 1}


async def test_sync_handlers_call_sleep_and_suspend_too(url: str, names: Names) -> None:
    svc = Service(names("sync"))

    @svc.handler
    def child(ctx: SyncContext, n: int) -> int:
        return n + 1

    @svc.handler
    def parent(ctx: SyncContext, n: int) -> int:
        ctx.sleep(0.05)
        return int(ctx.call(svc.name, "child", n)) * 10

    async with running(svc, url, suspend_after=0.0, concurrency=2), client(url) as c:
        ids = [(await c.send(svc.name, "parent", n)).id for n in range(5)]
        assert await asyncio.gather(*(c.result(i, 20) for i in ids)) == [(n + 1) * 10 for n in range(5)]
