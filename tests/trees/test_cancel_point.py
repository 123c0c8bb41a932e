"""Where a cancelled handler sees ``Cancelled`` is journaled (``reliq.worker.cancelpoint``), so a
replay shows it at the same await whatever the journal holds there by now: a compensation that
suspends (on a compensating child) goes on after it resumes, instead of meeting the cancelled
child's ``ChildCancelled`` where the first run met ``Cancelled`` and ending without its undo. A
cancel seen in memory lets the compensation start children; a child cancelled by the parent's own
cancel walk raises ``Cancelled`` at its await (so ``except Cancelled`` runs), while one the
handler saw cancelled before its own cancel keeps raising ``ChildCancelled`` on every replay."""

from __future__ import annotations

import pytest

from reliq import Cancelled, ChildCancelled, Client, Context, Service
from reliq.client.relay import relay_once

from ..conftest import Names, client, running, wait_until


def _app(names: Names) -> Service:
    svc = Service(names("cp"))

    @svc.handler
    async def hold(ctx: Context) -> str:
        await ctx.promise("go")
        return "held"

    @svc.handler
    async def undo_later(ctx: Context) -> str:
        await ctx.promise("go")  # the compensation's own child: it suspends the parent
        return "undone"

    @svc.handler
    async def order(ctx: Context) -> str:
        try:
            return str(await ctx.call(svc.name, "hold"))
        except Cancelled:
            await ctx.call(svc.name, "undo_later")
            await ctx.step("undo", lambda: "after-compensation")
            raise

    @svc.handler
    async def order_later(ctx: Context) -> str:
        kid = await ctx.send(svc.name, "hold", delay=3600)  # not started: the walk ends it at once
        try:
            return str(await ctx.result(kid))
        except Cancelled:
            await ctx.call(svc.name, "undo_later")
            await ctx.step("undo", lambda: "after-compensation")
            raise

    @svc.handler
    async def saw_first(ctx: Context) -> None:
        try:
            await ctx.call(svc.name, "hold")
        except ChildCancelled:
            await ctx.step("saw", lambda: "child-cancelled")
        try:
            await ctx.promise("go")
        except Cancelled:
            await ctx.step("undo", lambda: "at-promise")
            raise

    return svc


async def _state(c: Client, inv: str, want: str) -> None:
    async def reached() -> bool:
        return await c.state(inv) == want

    await wait_until(reached, timeout=15, what=f"{inv} {want}")


async def _child(c: Client, inv: str, n: int = 1) -> list[str]:
    async def linked() -> list[str] | None:
        doc = await c.get(inv)
        return doc.children if doc is not None and len(doc.children) >= n else None

    return await wait_until(linked, timeout=15, what=f"{n} children of {inv}")


@pytest.mark.parametrize("suspend_after", [0.1, 30.0], ids=["suspended", "in-memory"])
async def test_a_compensation_that_waits_on_a_child_goes_on_after_it(
    url: str, names: Names, suspend_after: float
) -> None:
    svc = _app(names)
    async with running(svc, url, suspend_after=suspend_after), client(url) as c:
        acc = await c.send(svc.name, "order")
        [held] = await _child(c, acc.id)
        await _state(c, held, "suspended" if suspend_after < 1 else "running")
        if suspend_after < 1:
            await _state(c, acc.id, "suspended")
        assert await c.cancel(acc.id) == "cancelling"
        [_, undo] = await _child(c, acc.id, 2)  # in memory it used to be refused: cancel requested
        await _state(c, undo, "suspended" if suspend_after < 1 else "running")
        assert await c.resolve(undo, "go", 1) in ("resumed", "stored")
        await _state(c, acc.id, "cancelled")
        doc = await c.get(acc.id)
        assert doc is not None and doc.steps == {"undo": "after-compensation"}
        assert await c.state(held) == "cancelled" and await c.state(undo) == "succeeded"


async def test_a_child_cancelled_by_the_walk_before_the_replay_raises_cancelled(
    url: str, names: Names
) -> None:
    svc = _app(names)
    async with client(url) as c:
        async with running(svc, url, suspend_after=0.1):
            acc = await c.send(svc.name, "order_later")
            [held] = await _child(c, acc.id)
            await _state(c, acc.id, "suspended")
        assert await c.cancel(acc.id) == "cancelling"  # no worker: the walk's outcome comes first
        k = c.keys(svc.name)

        async def delivered() -> bool:
            await relay_once(c, k)
            return bool(await c.redis.hexists(k.inbox(acc.id), f"c:{held}"))

        await wait_until(delivered, timeout=15, what="the held child's cancel in the parent's inbox")
        async with running(svc, url, suspend_after=0.1):
            [_, undo] = await _child(c, acc.id, 2)
            await _state(c, undo, "suspended")
            assert await c.resolve(undo, "go", 1) in ("resumed", "stored")
            await _state(c, acc.id, "cancelled")
        doc = await c.get(acc.id)
        assert doc is not None and doc.steps == {"undo": "after-compensation"}


async def test_a_child_seen_cancelled_before_the_own_cancel_stays_child_cancelled(
    url: str, names: Names
) -> None:
    svc = _app(names)
    async with running(svc, url, suspend_after=0.1), client(url) as c:
        acc = await c.send(svc.name, "saw_first")
        [held] = await _child(c, acc.id)
        await _state(c, held, "suspended")
        assert await c.cancel(held) == "cancelling"  # an operator cancels the child alone

        async def saw() -> bool:
            doc = await c.get(acc.id)
            return doc is not None and "saw" in doc.steps and doc.state == "suspended"

        await wait_until(saw, timeout=15, what="the parent past its ChildCancelled, on its promise")
        assert await c.cancel(acc.id) == "cancelling"
        await _state(c, acc.id, "cancelled")
        doc = await c.get(acc.id)
        assert doc is not None and doc.steps == {"saw": "child-cancelled", "undo": "at-promise"}


async def test_a_compensation_that_fails_runs_again_and_finishes(url: str, names: Names) -> None:
    """A compensation cut by an error (its grace's timeout in a Redis outage, a flaky undo) used
    to end the invocation cancelled at once, its undo never done; now the compensating run is
    retried (the attempt counts) and replays to where it stopped."""
    svc = Service(names("cf"))
    tries: list[int] = []

    def flaky_undo() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("the undo's first try fails")
        return "undone"

    @svc.handler(max_attempts=3, backoff_base=0.01)
    async def order(ctx: Context) -> None:
        try:
            await ctx.promise("paid")
        except Cancelled:
            await ctx.step("undo", flaky_undo)
            raise

    async with running(svc, url, suspend_after=0.05), client(url) as c:
        acc = await c.send(svc.name, "order")
        await _state(c, acc.id, "suspended")
        assert await c.cancel(acc.id) == "cancelling"
        await _state(c, acc.id, "cancelled")
        doc = await c.get(acc.id)
        assert doc is not None and doc.steps == {"undo": "undone"} and doc.attempt == 2
    assert len(tries) == 2


async def test_a_compensating_replay_passes_a_child_an_earlier_run_saw_succeed(
    url: str, names: Names
) -> None:
    """The first run read the first child's success from its record and went on to the second
    call; the relay had not delivered it when the cancel came (found by the chaos cancel
    workload). The compensating replay showed Cancelled at the first call, so the compensation's
    call took the second call's position: ``Nondeterminism``, and no undo."""
    svc = Service(names("fc"))

    @svc.handler
    async def first(ctx: Context) -> str:
        return "a"

    @svc.handler
    async def second(ctx: Context) -> str:
        await ctx.promise("go")
        return "b"

    @svc.handler
    async def undo(ctx: Context) -> str:
        return "u"

    @svc.handler
    async def parent(ctx: Context) -> None:
        try:
            await ctx.call(svc.name, "first")
            await ctx.call(svc.name, "second")
        except Cancelled:
            await ctx.call(svc.name, "undo")
            await ctx.step("undo", lambda: "done")
            raise

    async with running(svc, url, suspend_after=0.1), client(url) as c:
        acc = await c.send(svc.name, "parent")
        [one, _] = await _child(c, acc.id, 2)
        await _state(c, acc.id, "suspended")
        await c.redis.hdel(c.keys(svc.name).inbox(acc.id), f"c:{one}")  # as if not relayed yet
        assert await c.cancel(acc.id) == "cancelling"
        await _state(c, acc.id, "cancelled")
        doc = await c.get(acc.id)
        assert doc is not None and doc.steps == {"undo": "done"} and len(doc.children) == 3
