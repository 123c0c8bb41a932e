"""promote.lua: due invocations move from the delayed set to the stream, each exactly once however
many workers promote at the same time; invocations not yet due stay where they are.

Time is controlled explicitly: an invocation is sent with a long delay and made due by setting its
score in the delayed set (the due time promote reads) to the past; nothing waits for the clock."""

from __future__ import annotations

import asyncio
from collections import Counter

from reliq import Client
from reliq.store.keys import ServiceKeys
from reliq.store.sources import source as _source

from ..conftest import Names, client
from .lua import run, text


async def scheduled(c: Client, svc: str, n: int) -> list[str]:
    ids = [(await c.send(svc, "h", i, delay=3600)).id for i in range(n)]
    assert {await c.state(i) for i in ids} == {"scheduled"}
    return ids


async def make_due(c: Client, k: ServiceKeys, ids: list[str]) -> None:
    assert await c.redis.zadd(k.delayed, dict.fromkeys(ids, 0), xx=True, ch=True) == len(ids)


def promote_args(k: ServiceKeys, ids: list[str]) -> tuple[list[str], list[str]]:
    keys = [k.delayed, k.stream, k.suspended, k.minutes, *k.streams[1:]]
    for i in ids:
        keys += [k.inv(i), k.inbox(i)]
    return keys, ids


async def entries_per_id(c: Client, k: ServiceKeys) -> Counter[str]:
    return Counter(f[b"i"].decode() for _, f in await c.redis.xrange(k.stream))


async def test_two_promotes_of_the_same_due_ids_in_one_pipeline_queue_each_once(
    url: str, names: Names
) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        ids = await scheduled(c, svc, 5)
        await make_due(c, k, ids)
        script = c.redis.register_script(_source("promote"))
        keys, args = promote_args(k, ids)
        async with c.redis.pipeline(transaction=False) as p:
            await script(keys=keys, args=args, client=p)
            await script(keys=keys, args=args, client=p)
            assert await p.execute() == [5, 0]  # only the caller whose ZREM removed an id queues it
        assert await entries_per_id(c, k) == Counter(ids)  # one stream entry per invocation
        assert await c.redis.zcard(k.delayed) == 0  # and none left to promote again
        for i in ids:
            rec = text(await c.redis.hmget(k.inv(i), "state", "entry"))
            assert rec[0] == "pending" and rec[1] in {e.decode() for e, _ in await c.redis.xrange(k.stream)}
        # a later promote (any worker, any time) finds nothing: still one entry each
        assert await run(c, "promote", keys, args) == 0
        assert await entries_per_id(c, k) == Counter(ids)
        for i in ids:
            await c.cancel(i)


async def test_concurrent_promoters_move_each_due_invocation_exactly_once(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        ids = await scheduled(c, svc, 50)
        await make_due(c, k, ids)
        moved = await asyncio.gather(*(run(c, "promote", *promote_args(k, ids)) for _ in range(8)))
        assert sum(moved) == 50
        assert await entries_per_id(c, k) == Counter(ids)
        assert await c.redis.zcard(k.delayed) == 0
        assert {await c.state(i) for i in ids} == {"pending"}
        for i in ids:
            await c.cancel(i)


async def test_promote_leaves_invocations_that_are_not_due(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        [due, later] = await scheduled(c, svc, 2)
        await make_due(c, k, [due])
        assert await run(c, "promote", *promote_args(k, [due, later])) == 1
        assert await c.redis.zscore(k.delayed, later) is not None
        assert (await c.state(due), await c.state(later)) == ("pending", "scheduled")
        assert await entries_per_id(c, k) == Counter([due])
        tl = (await c.redis.hget(k.inv(due), "tl")).decode().splitlines()
        assert '"promoted"' in tl[-1]
        await c.cancel(due)
        await c.cancel(later)


async def test_a_cancelled_invocation_listed_as_due_is_not_queued(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        [inv] = await scheduled(c, svc, 1)
        await c.cancel(inv)  # cancel.lua takes it out of the delayed set; put it back as if raced
        await c.redis.zadd(k.delayed, {inv: 0})
        assert await run(c, "promote", *promote_args(k, [inv])) == 0
        assert await c.redis.xlen(k.stream) == 0 and await c.redis.zcard(k.delayed) == 0
        assert await c.state(inv) == "cancelled"
