"""What flows up and down a tree: durable timers, a child's failure (caught to compensate, or
escaping: the parent is parked ``child-failed`` after one attempt), durable deadlines, the
nondeterminism guard, and cancellation of a parent reaching its children."""

from __future__ import annotations

import asyncio
import time
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


async def test_a_replay_that_sends_a_finished_child_another_payload_is_parked_nondeterministic(
    url: str, names: Names
) -> None:
    """The payload is checked when a child is re-sent (an idempotency conflict); a child that
    finished is not re-sent, so a replay that swapped two calls' payloads got the old results."""
    svc = Service(names("ndp"))
    runs: Counter[str] = Counter()

    @svc.handler
    async def leaf(ctx: Context, x: str) -> str:
        return x

    @svc.handler
    async def parent(ctx: Context) -> list[str]:
        runs["parent"] += 1
        first, second = ("A", "B") if runs["parent"] == 1 else ("B", "A")  # the code "changed"
        got = [str(await ctx.call(svc.name, "leaf", first)), str(await ctx.call(svc.name, "leaf", second))]
        await ctx.promise("go")  # suspends: the replay comes after both children finished
        return got

    async with running(svc, url, suspend_after=0.05), client(url) as c:
        acc = await c.send(svc.name, "parent")

        async def suspended() -> bool:
            return await c.state(acc.id) == "suspended"

        await wait_until(suspended, what="suspended after both children")
        await c.resolve(acc.id, "go", 1)
        with pytest.raises(InvocationFailed):
            await c.result(acc.id, 10)
        inv = await c.get(acc.id)
        assert inv is not None and inv.reason == "nondeterminism" and inv.error is not None
        assert "another payload" in inv.error.message


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


async def test_a_child_that_won_its_deadline_in_memory_wins_it_on_every_replay(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's success is read from its record while the parent waits, before the relay
    delivers it into the parent's inbox. A replay that comes after the deadline, with the relay
    still behind (a worker killed after the child's outcome, a partition nobody consumes), must
    not take the timeout branch the first run did not take: the parent journals the winner."""
    svc = Service(names("rc"))

    async def no_relay(*_: object) -> tuple[int, int]:
        return 0, 0  # the child's outcome stays in the outbox: only its record says it succeeded

    monkeypatch.setattr("reliq.worker.relay.relay_once", no_relay)

    @svc.handler
    async def quick(ctx: Context) -> str:
        return "child-ok"

    @svc.handler
    async def parent(ctx: Context) -> list[str]:
        try:
            saw = str(await ctx.call(svc.name, "quick", timeout=0.5))
        except TimeoutError:
            saw = "TIMEOUT"
        first = await ctx.step("first-run-saw", lambda: saw)
        await ctx.promise("go")  # suspends; resumed after the deadline passed
        return [first, saw]

    async with running(svc, url, suspend_after=0.1), client(url) as c:
        acc = await c.send(svc.name, "parent")

        async def suspended() -> bool:
            return await c.state(acc.id) == "suspended"

        await wait_until(suspended, timeout=10, what="the parent suspended on its promise")
        doc = await c.get(acc.id)
        assert doc is not None and doc.steps == {"first-run-saw": "child-ok"}
        created = doc.created or 0
        await wait_until(lambda: time.time() * 1000 > created + 600, what="the deadline passed")
        assert await c.resolve(acc.id, "go", 1) == "resumed"
        assert await c.result(acc.id, 10) == ["child-ok", "child-ok"]
