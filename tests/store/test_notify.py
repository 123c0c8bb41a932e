"""lua/lib/notify.lua: every terminal transition publishes the ids that finished on the partition's
``done`` channel (SPUBLISH, the channel in KEYS): complete (one message per batch), park, retry
with a cancel requested, cancel of queued work. Transitions that are not terminal publish
nothing. complete adds the small results of the successes, one line each. On a Cluster the
script stays in its slot (the channel carries the partition's tag)."""

from __future__ import annotations

import asyncio

import pytest

from reliq.client import Client
from reliq.store.keys import ServiceKeys

from ..conftest import Names, client
from .lua import claimed

ERROR = b'{"type":"E","message":"m"}'


async def published(c: Client, channel: str, then: asyncio.Future[None], n: int) -> list[str]:
    """The first ``n`` messages on ``channel`` after subscribing, while ``then`` runs."""
    server = await c.topology.node_for(channel)
    ps = server.pubsub()
    try:
        await ps.ssubscribe(channel)
        while (await ps.get_message(timeout=5)) is None:  # the confirmation
            pass
        then.set_result(None)
        out: list[str] = []
        while len(out) < n:
            msg = await ps.get_message(ignore_subscribe_messages=True, timeout=5)
            assert msg is not None, f"only {out} published"
            out.append(msg["data"].decode())
        return out
    finally:
        await ps.aclose()  # type: ignore[no-untyped-call]


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_each_terminal_transition_publishes_its_ids(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        a, b, p, r, other = [await claimed(c, k) for _ in range(5)]
        q = await c.send(svc, "h", None)
        s = c.scripts
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        listening = asyncio.create_task(published(c, k.done_channel, ready, 4))
        await asyncio.wait_for(ready, 10)
        # not terminal: a retry without a cancel, a cancel of running work
        assert await s.cancel(k, r.id, 60_000) == "cancelling"
        assert await s.retry(k, other.id, other.entry, other.epoch, 10, ERROR, 60_000, 0) == "ok"
        # terminal: each publishes
        done = [(a.id, a.entry, a.epoch, "succeeded", b"1"), (b.id, b.entry, b.epoch, "cancelled", b"")]
        assert await s.complete(k, 60_000, done) == ["ok", "ok"]
        assert await s.park(k, p.id, p.entry, p.epoch, "terminal", ERROR, 60_000) == "ok"
        assert await s.retry(k, r.id, r.entry, r.epoch, 10, ERROR, 60_000, 0) == "cancelled"
        assert await s.cancel(k, q.id, 60_000) == "cancelled"
        messages = await asyncio.wait_for(listening, 10)
        # complete's message carries the small result of the success, one line per result (a reader
        # of the release before splits on whitespace: it still finds both ids)
        assert messages == [f"{a.id} {b.id}\n{a.id} 1", p.id, r.id, q.id]
        assert {a.id, b.id} <= set(messages[0].split())
        assert await s.cancel(k, other.id, 60_000) == "cancelled"
        await c.redis.zrem(k.parked, p.id)
        await c.redis.delete(k.stream)
