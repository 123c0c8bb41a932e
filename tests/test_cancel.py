"""cancel.lua + the worker's cancel path: queued and delayed invocations never run; a running
handler is cancelled promptly (pub/sub), not at the next lease renewal."""

import asyncio
import time

import pytest

from reliq import Context, InvocationFailed, Service, UnknownInvocation
from reliq.store.keys import ServiceKeys, new_id

from .conftest import Names, client, running, wait_until


async def test_a_queued_invocation_cancelled_before_any_worker_never_runs(url: str, names: Names) -> None:
    svc = Service(names())
    runs: list[str] = []

    @svc.handler
    async def job(ctx: Context, n: int) -> int:
        runs.append(ctx.id)
        return n

    async with client(url) as c:
        doomed = await c.send(svc.name, "job", 1)
        assert await c.cancel(doomed.id) == "cancelled"
        assert await c.cancel(doomed.id) == "terminal"
        after = await c.send(svc.name, "job", 2)
        async with running(svc, url):
            assert await c.result(after.id, 10) == 2
        with pytest.raises(InvocationFailed) as e:
            await c.result(doomed.id, 1)
        assert e.value.state == "cancelled"
        assert runs == [after.id]
        assert await c.redis.xlen(ServiceKeys(svc.name).stream) == 0


async def test_a_delayed_invocation_cancelled_never_runs(url: str, names: Names) -> None:
    svc = Service(names())
    runs: list[str] = []

    @svc.handler
    async def job(ctx: Context) -> None:
        runs.append(ctx.id)

    async with running(svc, url), client(url) as c:
        doomed = await c.send(svc.name, "job", delay=0.2)
        assert await c.cancel(doomed.id) == "cancelled"
        later = await c.send(svc.name, "job", delay=0.4)
        await c.result(later.id, 10)
        assert runs == [later.id]
        assert await c.redis.zcard(ServiceKeys(svc.name).delayed) == 0


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_a_running_handler_is_cancelled_promptly(url: str, names: Names) -> None:
    svc = Service(names())
    started = asyncio.Event()
    outcome: list[str] = []

    @svc.handler
    async def forever(ctx: Context) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    # visibility 60 s: renewal runs every 20 s, so only the prompt path can pass this test
    async with running(svc, url, visibility_timeout=60.0), client(url) as c:
        acc = await c.send(svc.name, "forever")
        await asyncio.wait_for(started.wait(), 10)
        t0 = time.monotonic()
        assert await c.cancel(acc.id) == "cancelling"
        inv = await wait_until(_state_is(c, acc.id, "cancelled"), timeout=5, what="cancelled")
        assert time.monotonic() - t0 < 5
        assert outcome == ["cancelled"] and inv.cancel_requested


async def test_cancel_of_an_unknown_invocation_raises(url: str, names: Names) -> None:
    async with client(url) as c:
        with pytest.raises(UnknownInvocation):
            await c.cancel(new_id(names()))


def _state_is(c, inv_id: str, state: str):  # type: ignore[no-untyped-def]
    async def check():  # type: ignore[no-untyped-def]
        inv = await c.get(inv_id)
        return inv if inv is not None and inv.state == state else None

    return check
