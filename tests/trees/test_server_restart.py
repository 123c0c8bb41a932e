"""The embedded Valkey (AOF, appendfsync always) is SIGKILLed and restarted under 300 suspended
invocations: 100 parents waiting on children whose service has no worker yet, 100 durable
sleepers, 100 promise waiters. Suspension is state in Redis only, so after the restart every
one of them finishes, once, and nothing is left suspended, delayed or undelivered."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

from reliq import Client, Context, Service
from reliq.devserver.embedded import EmbeddedValkey
from reliq.store.keys import ServiceKeys
from reliq.store.record import TERMINAL

from ..conftest import client, leaked_keys, running, wait_until

N = 100
NAP = 3.0  # the sleepers' durable sleep: longer than their suspending and the restart


async def test_suspended_trees_sleepers_and_promises_survive_a_server_crash(tmp_path: Path) -> None:
    server = EmbeddedValkey(data_dir=tmp_path).start()
    top, kids = Service(f"rtop{uuid.uuid4().hex[:8]}"), Service(f"rkid{uuid.uuid4().hex[:8]}")
    ran: Counter[str] = Counter()  # effects after each wait, by invocation id

    def effect(inv: str) -> None:
        ran[inv] += 1

    @kids.handler
    async def double(ctx: Context, n: int) -> int:
        return n * 2

    @top.handler
    async def parent(ctx: Context, n: int) -> int:
        got = int(await ctx.call(kids.name, "double", n))
        await ctx.step("after", effect, ctx.id)
        return got + 1

    @top.handler
    async def sleeper(ctx: Context, n: int) -> int:
        await ctx.sleep(NAP)
        await ctx.step("after", effect, ctx.id)
        return n

    @top.handler
    async def waiter(ctx: Context, n: int) -> int:
        got = int(await ctx.promise("go"))
        await ctx.step("after", effect, ctx.id)
        return got + n

    tk, kk = ServiceKeys(top.name), ServiceKeys(kids.name)
    try:
        async with running(top, server.url, concurrency=50, suspend_after=0.05):
            async with client(server.url) as c:
                parents = [(await c.send(top.name, "parent", n)).id for n in range(N)]
                waiters = [(await c.send(top.name, "waiter", n)).id for n in range(N)]
                await wait_until(suspended(c, tk, 2 * N), timeout=30, what="parents and waiters suspended")
                # the sleepers last: their timers must still be pending at the crash
                sleepers = [(await c.send(top.name, "sleeper", n)).id for n in range(N)]
                every = parents + sleepers + waiters
                await wait_until(suspended(c, tk, 3 * N), timeout=NAP, what="all 300 suspended")
                assert int(await c.redis.xlen(kk.stream)) == N  # the children, queued, no worker
            server.kill()  # SIGKILL, under the running worker
            server.start()
            async with client(server.url) as c:
                assert int(await c.redis.zcard(tk.suspended)) == 3 * N  # nothing lost
                assert {await c.state(i) for i in every} == {"suspended"}
                for i in waiters:
                    assert await c.resolve(i, "go", 1000) == "resumed"
                async with running(kids, server.url, concurrency=50):
                    got = await asyncio.gather(*(c.result(i, 30) for i in every))
                    assert got == [n * 2 + 1 for n in range(N)] + list(range(N)) + [
                        1000 + n for n in range(N)
                    ]

                    async def delivered() -> bool:  # the relay deletes after applying
                        return int(await c.redis.xlen(kk.outbox)) == 0

                    await wait_until(delivered, what="outbox empty")
                assert dict(ran) == dict.fromkeys(every, 1)
                children = []
                for p in parents:
                    doc = await c.get(p)
                    assert doc is not None and len(doc.children) == 1
                    children.append(doc.children[0])
                for i in every + children:
                    doc = await c.get(i)
                    assert doc is not None and doc.state == "succeeded"
                assert await _nothing_left(c, tk, kk) == 4 * N
        assert not leaked_keys(server.url, [top.name, kids.name])
    finally:
        server.stop()


def suspended(c: Client, k: ServiceKeys, n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return int(await c.redis.zcard(k.suspended)) == n

    return check


async def _nothing_left(c: Client, *partitions: ServiceKeys) -> int:
    """No record of either service in a non-terminal state, nothing suspended or delayed, no
    outbox message. Returns how many records it checked."""
    seen = 0
    for k in partitions:
        assert await c.redis.zcard(k.suspended) == 0
        assert await c.redis.zcard(k.delayed) == 0
        assert await c.redis.xlen(k.outbox) == 0
        async for key in c.redis.scan_iter(match=f"{k.inv_prefix}*", count=1000):
            state = await c.redis.hget(key, "state")
            assert state is not None and state.decode() in TERMINAL, (key, state)
            seen += 1
    return seen
