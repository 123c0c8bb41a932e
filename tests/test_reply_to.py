"""Reply-to (two one-way calls): the outcome of an invocation sent with ``reply_to`` reaches that
handler as a new invocation, once, for success, parked and cancelled outcomes; the outbox message
is written with the completion and stays until the relay applied it (a crash in between loses
nothing), and applying it twice registers one reply."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reliq import Context, Reply, Service, Terminal
from reliq.client.relay import relay_once
from reliq.store.keys import GROUP, reply_token

from .conftest import Names, client, running, wait_until


@pytest.mark.semantics  # also on a Cluster: the reply lives in another slot
async def test_the_reply_carries_success_parked_and_cancelled_outcomes(url: str, names: Names) -> None:
    pay, billing = Service(names("pay")), Service(names("bill"))
    replies: list[Reply] = []

    @pay.handler(max_attempts=1)
    async def charge(ctx: Context, cents: int) -> dict[str, int]:
        if cents < 0:
            raise Terminal("negative")
        return {"charged": cents}

    @billing.handler
    async def on_charged(ctx: Context, reply: Reply) -> None:
        replies.append(reply)

    async with client(url) as c:
        late = await c.send(pay.name, "charge", 7, delay=60, reply_to=(billing.name, "on_charged"))
        assert await c.cancel(late.id) == "cancelled"  # never ran: the reply says cancelled
        async with running(pay, url, relay_interval=0.2), running(billing, url):
            ok = await c.send(pay.name, "charge", 5, reply_to=(billing.name, "on_charged"))
            bad = await c.send(pay.name, "charge", -1, reply_to=f"{billing.name}/on_charged")
            await wait_until(lambda: len(replies) >= 3, what="three replies")
        by_id = {r.id: r for r in replies}
        assert len(replies) == 3
        assert by_id[ok.id].state == "succeeded" and by_id[ok.id].result == {"charged": 5}
        assert by_id[bad.id].state == "failed" and by_id[bad.id].error["message"] == "negative"
        assert by_id[late.id].state == "cancelled" and by_id[late.id].result is None


async def test_a_reply_survives_a_crash_before_the_relay_and_is_registered_once(
    url: str, names: Names
) -> None:
    src, dst = names("src"), names("dst")
    async with client(url) as c:
        acc = await c.send(src, "work", 1, reply_to=(dst, "done"))
        k = c.keys(src)
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        [[_, [(eid, _)]]] = await c.redis.xreadgroup(GROUP, "w", {k.stream: ">"}, count=1)
        [cl] = await c.scripts.claim(k, "w", 30_000, [(eid.decode(), acc.id)])
        # the worker completes, then dies before any relay: the reply waits in the outbox
        assert await c.scripts.complete(k, 60_000, [(acc.id, cl.entry, cl.epoch, "succeeded", b"42")]) == [
            "ok"
        ]
        [(_, msg)] = await c.redis.xrange(k.outbox)
        assert msg[b"k"] == b"reply" and msg[b"v"] == b"S42"
        reply_id = await c.route(dst, reply_token(dst, acc.id))
        assert await c.get(reply_id) is None
        # two relays race, then the message is applied once more (a crash between apply and delete)
        await asyncio.gather(relay_once(c, k), relay_once(c, k))
        await c.redis.xadd(k.outbox, {k_: v for k_, v in msg.items()})
        await relay_once(c, k)
        assert await c.redis.xlen(k.outbox) == 0
        doc = await c.get(reply_id)
        assert doc is not None and doc.handler == "done" and doc.payload == _reply(acc.id, 42)
        assert int(await c.redis.xlen(c.keys(dst).stream)) == 1  # one reply invocation
        await c.redis.delete(c.keys(dst).inv(reply_id), c.keys(dst).stream)


def _reply(source: str, result: Any) -> dict[str, Any]:
    return {"id": source, "state": "succeeded", "result": result, "error": None}
