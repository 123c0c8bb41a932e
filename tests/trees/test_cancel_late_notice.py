"""Found by the chaos harness's cancel workload (docs/reliability.md, ``--workload cancel``): a
handler shown ``Cancelled`` by a path other than ``Waits.deliver_cancel`` (``link_child`` refused
the registration because the cancel was recorded, a journaled cancel point on replay, a child the
walk cancelled) runs its compensation; the cancel's pub/sub message arriving after that (late: the
client's ``PUBLISH`` follows the cancel script, and a fault can delay it) goes to
``request_cancel``, which saw no ``cancel_requested`` yet and cut the compensation short:
``Cancelled`` was raised again at the compensation's durable await (or the task was cancelled
when it waited for nothing), and the invocation ended ``cancelled`` without its undo. Now a
handler shown ``Cancelled`` is left to compensate, within ``cancel_grace``."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace

from reliq import Cancelled, Context, Service
from reliq.worker.cancels import _insist

from ..conftest import Names, client, running, wait_until


async def test_a_late_cancel_notice_leaves_a_running_compensation_alone(url: str, names: Names) -> None:
    svc = Service(names("late"))

    @svc.handler
    async def hold(ctx: Context) -> str:
        await ctx.promise("go")
        return "held"

    async def cancel_quietly(inv: str) -> str:  # the cancel script alone: its PUBLISH comes later
        async with client(url) as c:
            return str(await c.scripts.cancel(c.keys_of(inv), inv, c.retention_ms, "test"))

    @svc.handler
    async def order(ctx: Context) -> str:
        await ctx.step("a", cancel_quietly, ctx.id)
        try:
            return str(await ctx.call(svc.name, "hold"))  # link_child refuses: Cancelled shown here
        except Cancelled:
            await ctx.call(svc.name, "hold", key="undo")  # in memory: suspend_after is 30 s
            await ctx.step("undo", lambda: "after-compensation")
            raise

    async with running(svc, url, suspend_after=30.0), client(url) as c:
        inv = (await c.send(svc.name, "order")).id

        async def linked() -> list[str] | None:
            doc = await c.get(inv)
            return doc.children if doc is not None and doc.children else None

        [undo] = await wait_until(linked, timeout=15, what="the compensation's child")
        await c.redis.publish(c.keys_of(inv).cancel_channel, inv)  # the late notice
        assert await c.resolve(undo, "go", 1) in ("resumed", "stored")

        async def ended() -> bool:
            return await c.state(inv) == "cancelled"

        await wait_until(ended, timeout=15, what="the parent cancelled")
        doc = await c.get(inv)
        assert doc is not None and doc.steps == {"a": "cancelling", "undo": "after-compensation"}


async def test_a_swallowed_cancel_gives_the_compensation_that_followed_its_grace() -> None:
    """A cancel that reached the handler in plain code cancels its task and insists (redis-py can
    swallow a cancellation). When the first was swallowed and the handler went on to be shown
    Cancelled (a refused child link) and compensate, the insisting cut the compensation within
    0.1 s (found by the chaos cancel workload); now it waits for the grace first."""
    loop = asyncio.get_running_loop()
    waits = SimpleNamespace(cancel_seen=False)
    cut: list[float] = []

    async def handler() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as in some redis-py awaits
            await asyncio.sleep(30)
        waits.cancel_seen = True  # shown Cancelled: the compensation starts
        shown = loop.time()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cut.append(loop.time() - shown)
            raise

    task = asyncio.create_task(handler())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait_for(_insist(SimpleNamespace(task=task, settling=False, waits=waits), grace=0.5), 10)  # type: ignore[arg-type]
    assert len(cut) == 1 and cut[0] >= 0.5, cut
