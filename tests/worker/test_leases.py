"""leases: renewal keeps a long handler's entry from being reclaimed; a lease found lost cancels
the local handler, which then commits nothing; a durable cancel flag seen by renewal cancels it.
The local lease deadline: a step body does not start past it, a handler held past it does not
start, and the renew loop cancels the handler at it when renewals keep failing."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from reliq import Context, Service
from reliq.store.keys import GROUP, ServiceKeys
from reliq.worker.leases import renew_once

from ..conftest import Names, client, running, wait_until


async def test_a_handler_running_past_the_visibility_timeout_keeps_its_lease(url: str, names: Names) -> None:
    svc = Service(names())
    runs: list[int] = []

    @svc.handler
    async def slow(ctx: Context) -> str:
        runs.append(ctx.epoch)
        await asyncio.sleep(2.5)  # 5x the visibility timeout
        return "done"

    async with client(url) as c:
        # 0.5 s, not less: a loop stalled past the lease (a loaded CI machine) cancels the handler
        async with running(svc, url, visibility_timeout=0.5, reclaim_interval=0.05):
            acc = await c.send(svc.name, "slow")
            assert await c.result(acc.id, 10) == "done"
        inv = await c.get(acc.id)
        assert inv is not None and inv.crashes == 0
    assert len(runs) == 1  # its own reclaim loop never took it back


def sleeper(svc: Service) -> tuple[asyncio.Event, asyncio.Event]:
    """A handler ``job`` that sleeps for an hour: (started, cancelled)."""
    started, cancelled = asyncio.Event(), asyncio.Event()

    @svc.handler
    async def job(ctx: Context) -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    return started, cancelled


async def test_a_lost_lease_cancels_the_handler_and_it_commits_nothing(url: str, names: Names) -> None:
    svc = Service(names())
    started, cancelled = sleeper(svc)
    k = ServiceKeys(svc.name)
    async with client(url) as c, running(svc, url, visibility_timeout=60.0) as w:
        acc = await c.send(svc.name, "job")
        await asyncio.wait_for(started.wait(), 10)
        [entry] = await c.redis.xpending_range(k.stream, GROUP, "-", "+", 1)
        eid = entry["message_id"].decode()
        # another worker takes the entry over: its claim bumps the epoch
        await c.redis.xclaim(k.stream, GROUP, "thief", 0, [eid])
        [claimed] = await c.scripts.claim(k, "thief", 60000, [(eid, acc.id)])
        epoch = claimed.epoch
        await renew_once(w.rt)
        await asyncio.wait_for(cancelled.wait(), 10)
        await wait_until(lambda: not w.rt.holds(acc.id), what="the handler to be dropped")
        inv = await c.get(acc.id)
        assert inv is not None and inv.state == "running" and inv.owner == "thief"
        assert w.settler.fenced == 0 and w.settler.given_up == 0  # it did not even try to write
        assert await c.scripts.complete(k, 60000, [(acc.id, eid, epoch, "succeeded", b'"thief"')]) == ["ok"]
        assert await c.result(acc.id, 1) == "thief"


async def test_a_cancel_flag_seen_by_renewal_cancels_the_handler(url: str, names: Names) -> None:
    svc = Service(names())
    started, _ = sleeper(svc)
    k = ServiceKeys(svc.name)
    async with client(url) as c, running(svc, url, visibility_timeout=60.0) as w:
        acc = await c.send(svc.name, "job")
        await asyncio.wait_for(started.wait(), 10)
        await c.redis.hset(k.inv(acc.id), "cancel", 1)  # the durable flag, without the pub/sub
        await renew_once(w.rt)

        async def cancelled() -> bool:
            inv = await c.get(acc.id)
            return inv is not None and inv.state == "cancelled"

        await wait_until(cancelled, what="the invocation to end cancelled")


async def test_no_step_body_starts_once_the_local_lease_has_lapsed(url: str, names: Names) -> None:
    svc = Service(names())
    started, go = asyncio.Event(), asyncio.Event()
    effects: list[str] = []

    @svc.handler
    async def job(ctx: Context) -> str:
        started.set()
        await go.wait()  # a process paused here past its lease resumes with the lease lapsed
        await ctx.step("effect", effects.append, ctx.id)
        return "done"

    async with client(url) as c, running(svc, url, visibility_timeout=60.0) as w:
        acc = await c.send(svc.name, "job")
        await asyncio.wait_for(started.wait(), 10)
        w.rt.inflight[acc.id].lease_until = time.monotonic() - 1  # as after a pause (no renewal ran)
        go.set()
        await wait_until(lambda: not w.rt.holds(acc.id), what="the handler to be dropped")
        inv = await c.get(acc.id)
        assert inv is not None and inv.state == "running" and not inv.steps  # nothing written
        assert w.settler.fenced == 0  # it did not even try to commit
    assert effects == []  # the step's effect never ran here: the next holder runs it


async def test_a_handler_held_past_its_lease_before_it_starts_is_not_run(url: str, names: Names) -> None:
    svc = Service(names())
    epochs: dict[str, int] = {}

    @svc.handler
    async def block(ctx: Context) -> None:
        time.sleep(1.0)  # noqa: ASYNC251 - blocks the loop past the 0.5 s lease (no renewal)

    @svc.handler
    async def after(ctx: Context) -> None:
        epochs[ctx.id] = ctx.epoch

    async with client(url) as c:
        await c.send(svc.name, "block")
        acc = await c.send(svc.name, "after")  # claimed in the same read, started after the block
        async with running(svc, url, visibility_timeout=0.5, concurrency=2, reclaim_interval=0.1):
            await c.result(acc.id, 20)
    assert epochs == {acc.id: 2}  # not run on its lapsed first claim; run once, reclaimed


@pytest.mark.parametrize("cut_off", ["fails", "hangs"])
async def test_the_handler_is_cancelled_at_the_local_deadline_when_renewals_fail(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch, cut_off: str
) -> None:
    """Renewals that fail at once, or that hang (a blackholed server, until the socket times
    out): either way the handler is cancelled at its local deadline."""
    svc = Service(names())
    started, cancelled = sleeper(svc)

    async def unreachable(*args: object, **kwargs: object) -> None:
        if cut_off == "hangs":
            await asyncio.Event().wait()
        raise RedisConnectionError("cut off")

    async with client(url) as c, running(svc, url, visibility_timeout=0.6, reclaim_interval=60.0) as w:
        acc = await c.send(svc.name, "job")
        await asyncio.wait_for(started.wait(), 10)
        monkeypatch.setattr(w.rt.client.scripts, "renew", unreachable)  # this worker alone is cut off
        await asyncio.wait_for(cancelled.wait(), 10)  # at most a lease after the last renewal
        await wait_until(lambda: not w.rt.holds(acc.id), what="the handler to be dropped")
        inv = await c.get(acc.id)
        assert inv is not None and inv.state == "running"  # nothing written: left to be reclaimed
