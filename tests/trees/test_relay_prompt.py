"""A child's outcome reaches its suspended parent at once, not at the next outbox sweep: the
worker wakes its relay after the script that wrote the outbox message, never before it."""

from __future__ import annotations

from reliq import Context, Service

from ..conftest import Names, client, running


async def test_a_suspended_parent_resumes_without_waiting_for_the_sweep(url: str, names: Names) -> None:
    svc = Service(names("prompt"))

    @svc.handler
    async def child(ctx: Context, n: int) -> int:
        return n * 2

    @svc.handler(suspend_after=0)
    async def parent(ctx: Context, n: int) -> int:
        return int(await ctx.call(child, n)) + 1

    # the sweep would come after 60 s: every result below must come from the prompt relay
    async with running(svc, url, relay_interval=60.0), client(url) as c:
        suspended = 0
        for n in range(12):  # sequential: each tree alone, so the relay's wake races the flush
            accepted = await c.send(svc.name, "parent", n)
            assert await c.result(accepted.id, timeout=5) == n * 2 + 1
            doc = await c.get(accepted.id)
            assert doc is not None
            suspended += doc.suspensions
        assert suspended >= 6  # most parents suspended (a child done before the first probe: none)
