"""Retention: finished work leaves no key without a TTL, and records expire after the retention."""

import asyncio
import time

from reliq import Client, Context, Retry, Service, Terminal
from reliq.admin.actions import act
from reliq.store.keys import ServiceKeys

from .conftest import Names, client, leaked_keys, running, wait_until


async def test_finished_work_of_every_kind_leaves_no_key_without_ttl(url: str, names: Names) -> None:
    parent, child = Service(names("p")), Service(names("c"))
    gate = asyncio.Event()

    @child.handler
    async def leaf(ctx: Context, n: int) -> int:
        return n

    @parent.handler(max_attempts=2, backoff_base=0.01)
    async def tree(ctx: Context, mode: str) -> int:
        await ctx.step("one", lambda: 1)
        total = await ctx.call(child.name, "leaf", 2)
        await ctx.send(child.name, "leaf", 3)
        if mode == "retry" and ctx.attempt == 1:
            raise Retry(delay=0.01)
        if mode == "terminal":
            raise Terminal("stop")
        if mode == "fail":
            raise ValueError("always")
        if mode == "wait":
            await gate.wait()
        return int(total)

    retention = 3600.0
    async with (
        running(parent, url, retention=retention),
        running(child, url, retention=retention),
        Client(url, retention=retention) as c,
    ):
        ids = [(await c.send(parent.name, "tree", m)).id for m in ("ok", "retry", "terminal", "fail", "wait")]
        ids.append((await c.send(parent.name, "tree", "ok", delay=60)).id)
        await wait_until(lambda: c.state(ids[4]), what="wait mode started")

        async def running_now() -> bool:
            return await c.state(ids[4]) == "running"

        await wait_until(running_now, what="running")
        assert await c.cancel(ids[4]) == "cancelling"
        assert await c.cancel(ids[5]) == "cancelled"

        async def all_done() -> bool:
            states = [await c.state(i) for i in ids]
            return all(s in ("succeeded", "failed", "cancelled") for s in states)

        try:
            await wait_until(all_done, what="all terminal")
        except AssertionError:
            for i in ids:
                print(await c.get(i))
            raise
        async with c.redis.pipeline(transaction=False) as p:
            for i in ids:
                for key in ServiceKeys(parent.name).per_invocation(i):
                    p.pttl(key)
            ttls = await p.execute()
        # every existing per-invocation key has a TTL no longer than the retention
        assert all(t == -2 or 0 < t <= retention * 1000 for t in ttls), ttls
    assert leaked_keys(url, [parent.name, child.name]) == []


async def test_terminal_records_expire_after_the_retention(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def job(ctx: Context) -> int:
        await ctx.step("s", lambda: 1)
        return 1

    async with running(svc, url, retention=0.3), Client(url, retention=0.3) as c:
        acc = await c.send(svc.name, "job", key="k")
        assert await c.result(acc.id, 10) == 1

        async def gone() -> bool:
            return await c.redis.exists(*ServiceKeys(svc.name).per_invocation(acc.id)) == 0

        await wait_until(gone, timeout=10, what="record expired")
        # the idempotency record expired with it: the key is free again
        again = await c.send(svc.name, "job", key="k")
        assert again.status == "accepted"
        assert await c.result(again.id, 10) == 1


async def test_admin_discard_and_cancel_use_the_published_retention(url: str, names: Names) -> None:
    svc = Service(names("ret"))
    week = 7 * 24 * 3600

    @svc.handler
    async def broken(ctx: Context) -> None:
        raise Terminal("no")

    async with client(url) as c:  # its own retention: the default 24 h
        async with running(svc, url, retention=float(week)):
            k = c.keys(svc.name)
            assert await c.redis.hget(k.settings, "retention_ms") == str(week * 1000).encode()
            acc = await c.send(svc.name, "broken")
            assert await wait_until(lambda: c.redis.zscore(k.parked, acc.id), what="parked")
        three_days_ago = int(time.time() * 1000) - 3 * 24 * 3600 * 1000
        old = f"{svc.name}.{'a' * 26}"
        await c.redis.zadd(k.archive, {old: three_days_ago})  # discarded 3 days ago: within a week
        assert (await act(c, "discard", acc.id, who="ops")).status == "discarded"
        assert await c.redis.zscore(k.archive, old) is not None
        later = await c.send(svc.name, "broken", delay=3600)
        assert (await act(c, "cancel", later.id, who="ops")).status == "cancelled"
        assert await c.redis.pttl(k.inv(later.id)) > 6 * 24 * 3600 * 1000
        await c.redis.delete(k.archive, k.settings, k.inv(acc.id))
