"""The worker's side of a cancel that reaches a handler: a cancel message that lands before the
handler's task took its first step, or during a compensation, or a durable wait left behind by a
``gather`` branch in a compensating run, never leaves the invocation running or suspended."""

from __future__ import annotations

import asyncio

import pytest

from reliq import Cancelled, Context, Service
from reliq.worker.cancels import request_cancel
from reliq.worker.decide import Claimed
from reliq.worker.inflight import InFlight

from ..conftest import Names, client, running, wait_until


async def test_a_cancel_before_the_handler_task_starts_ends_it_cancelled(url: str, names: Names) -> None:
    """A task cancelled before its first step never runs its body, cleanup included: the
    invocation stayed 'running' (lease renewed forever) and its slot was lost. The cancel's pub/sub
    message lands in that window when the cancel also queued the attempt (a compensating run)."""
    svc = Service(names())
    ran: list[str] = []

    @svc.handler
    async def job(ctx: Context) -> None:
        ran.append(ctx.id)

    async with running(svc, url, concurrency=2) as w, client(url) as c:
        start = w.executor.start

        def start_then_cancel(flight: InFlight, claimed: Claimed, claimed_at: float) -> None:
            start(flight, claimed, claimed_at)
            request_cancel(w.rt, claimed.id)  # before the task's first step

        w.executor.start = start_then_cancel  # type: ignore[method-assign]
        acc = await c.send(svc.name, "job")

        async def cancelled() -> bool:
            return await c.state(acc.id) == "cancelled"

        await wait_until(cancelled, timeout=10, what="the invocation to end cancelled")
        await wait_until(lambda: not w.rt.inflight, what="the in-flight table empty")
        # both slots come back (the read loop holds free slots for a moment during each read: poll)
        await wait_until(lambda: w.rt.limiter.free == 2, what="both slots free again")
    assert ran == []


async def test_a_cancel_message_during_the_compensation_does_not_interrupt_it(url: str, names: Names) -> None:
    """The compensating run is the cancel's own doing: a cancel message reaching it (the pub/sub
    of the same cancel, late, or relayed twice) must not cut its compensation short."""
    svc = Service(names())
    compensating = asyncio.Event()
    compensated: list[str] = []

    async def refund(inv: str) -> str:
        compensating.set()
        await asyncio.sleep(0.3)
        compensated.append(inv)
        return "refunded"

    @svc.handler(suspend_after=0.0)
    async def order(ctx: Context) -> None:
        try:
            await ctx.promise("paid")
        except Cancelled:
            await ctx.step("refund", refund, ctx.id)
            raise

    async with running(svc, url) as w, client(url) as c:
        acc = await c.send(svc.name, "order")

        async def suspended() -> bool:
            return await c.state(acc.id) == "suspended"

        await wait_until(suspended, what="suspended on the promise")
        assert await c.cancel(acc.id) == "cancelling"
        await asyncio.wait_for(compensating.wait(), 10)
        request_cancel(w.rt, acc.id)  # the cancel message again, mid-compensation

        async def cancelled() -> bool:
            return await c.state(acc.id) == "cancelled"

        await wait_until(cancelled, timeout=10, what="cancelled")
        doc = await c.get(acc.id)
        assert doc is not None and doc.steps == {"refund": "refunded"}
    assert compensated == [acc.id]


async def test_a_wait_left_behind_by_a_gather_does_not_keep_a_cancelled_invocation(
    url: str, names: Names
) -> None:
    """In the compensating run one branch of the gather raises Cancelled, the handler compensates
    and ends; the other branch's wait (a promise nobody resolves) suspended meanwhile. The
    handler's own ending stands: cancelled, not suspended on that promise forever."""
    svc = Service(names())

    async def slow_refund() -> str:
        await asyncio.sleep(0.3)  # the other branch suspends meanwhile (suspend_after 0)
        return "refunded"

    @svc.handler(suspend_after=0.0)
    async def order(ctx: Context) -> None:
        try:
            await asyncio.gather(ctx.promise("a"), ctx.promise("b"))
        except Cancelled:
            await ctx.step("refund", slow_refund)
            raise

    async with running(svc, url), client(url) as c:
        acc = await c.send(svc.name, "order")

        async def suspended() -> bool:
            return await c.state(acc.id) == "suspended"

        await wait_until(suspended, what="suspended on the promises")
        assert await c.cancel(acc.id) == "cancelling"

        async def cancelled() -> bool:
            return await c.state(acc.id) == "cancelled"

        await wait_until(cancelled, timeout=10, what="cancelled")
        doc = await c.get(acc.id)
        assert doc is not None and doc.steps == {"refund": "refunded"}


@pytest.mark.semantics
async def test_a_cancel_interrupting_plain_code_still_gives_the_journaled_work_its_compensation(
    url: str, names: Names
) -> None:
    """A cancel that reaches the handler in a plain ``await`` (no durable operation: the task gets a
    bare CancelledError, which ``except Cancelled`` does not catch) ended it cancelled at once:
    the charge journaled before was never refunded. It now runs again to compensate: the replay
    answers the charge from the journal and is shown Cancelled at the next step."""
    svc = Service(names())
    charged: list[str] = []
    refunded: list[str] = []
    in_plain_wait = asyncio.Event()

    async def charge(inv: str) -> str:
        charged.append(inv)
        return "charged"

    async def refund(inv: str) -> str:
        refunded.append(inv)
        return "refunded"

    @svc.handler
    async def order(ctx: Context) -> None:
        try:
            await ctx.step("charge", charge, ctx.id)
            if not ctx.cancelling:
                in_plain_wait.set()
                await asyncio.sleep(60)  # plain code: an HTTP call, a computation
            await ctx.step("ship", charge, ctx.id)
        except Cancelled:
            await ctx.step("refund", refund, ctx.id)
            raise

    async with running(svc, url), client(url) as c:
        acc = await c.send(svc.name, "order")
        await asyncio.wait_for(in_plain_wait.wait(), 10)
        assert await c.cancel(acc.id) == "cancelling"

        async def cancelled() -> bool:
            return await c.state(acc.id) == "cancelled"

        await wait_until(cancelled, timeout=15, what="cancelled")
        doc = await c.get(acc.id)
        assert doc is not None and doc.steps == {"charge": "charged", "refund": "refunded"}
    assert charged == [acc.id] and refunded == [acc.id]  # once each: "ship" never ran


@pytest.mark.semantics
async def test_a_cancel_interrupting_a_handler_with_no_journal_ends_it_without_another_run(
    url: str, names: Names
) -> None:
    """Nothing durable happened yet: nothing to undo, so no second run."""
    svc = Service(names())
    runs: list[str] = []
    started = asyncio.Event()

    @svc.handler
    async def order(ctx: Context) -> None:
        runs.append(ctx.id)
        started.set()
        await asyncio.sleep(60)

    async with running(svc, url), client(url) as c:
        acc = await c.send(svc.name, "order")
        await asyncio.wait_for(started.wait(), 10)
        assert await c.cancel(acc.id) == "cancelling"

        async def cancelled() -> bool:
            return await c.state(acc.id) == "cancelled"

        await wait_until(cancelled, timeout=15, what="cancelled")
        doc = await c.get(acc.id)
        assert doc is not None and doc.attempt == 1
    assert runs == [acc.id]
