"""scripts.py decodes every reply once into a typed value (replies.py): ``Claim`` per claimed
entry (10 values each in claim.lua's reply), ``Registered`` pairs, ``Layout``, and statuses
checked against their ``Literal`` (a reply the wrapper does not know is an error, not a silent
string)."""

from __future__ import annotations

import pytest

from reliq.store.keys import GROUP, ServiceKeys
from reliq.store.layout import Layout
from reliq.store.replies import CLAIM_WIDTH, Claim, Registered, Registration, UnexpectedReply, claims, pairs

from ..conftest import Names, client


async def test_a_claim_reply_is_one_struct_per_entry_in_order(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        parent = f"{svc}.abcdefghijklmnopqrstuvwxyz"
        a = await c.send_json(svc, "ha", b'{"n":1}', key="ka", parent=parent, trace="00-abc-01")
        b = await c.send(svc, "hb", None)
        done = await c.send(svc, "hc", None)
        await c.cancel(done.id)  # finished before it is claimed: skipped
        await c.redis.hset(k.inv(b.id), "cancel", "1")  # a cancel requested while queued
        [[_, read]] = await c.redis.xreadgroup(GROUP, "w", {k.stream: ">"}, count=10)
        entries = [(eid.decode(), f[b"i"].decode()) for eid, f in read]
        assert [i for _, i in entries] == [a.id, b.id, done.id]
        out = await c.scripts.claim(k, "w", 30_000, entries)
        assert [type(x) for x in out] == [Claim] * 3
        assert out[0] == Claim(
            entry=entries[0][0],
            id=a.id,
            status="run",
            epoch=1,
            handler="ha",
            payload=b'{"n":1}',
            attempt=1,
            crashes=0,
            deliveries=1,
            parent=parent,
            key="ka",
            trace="00-abc-01",
        )
        assert (out[1].status, out[1].id, out[1].handler, out[1].epoch) == ("cancel", b.id, "hb", 1)
        assert (out[1].parent, out[1].key, out[1].trace, out[1].payload) == (None, None, None, b"null")
        assert out[2] == Claim(entry=entries[2][0], id=done.id, status="skip")
        # claimed again by another consumer (the first never settled): a crash, a new epoch
        [again] = await c.scripts.claim(k, "w2", 30_000, entries[:1])
        assert (again.epoch, again.crashes, again.deliveries, again.status) == (2, 1, 2, "run")
        for x in (again, out[1]):
            assert await c.scripts.complete(k, 60_000, [(x.id, x.entry, x.epoch, "cancelled", b"")]) == ["ok"]
        await c.redis.delete(k.minutes, k.audit)


def test_a_reply_of_the_wrong_width_or_status_is_refused() -> None:
    entry = [b"run", 1, b"h", b"null", 1, 0, b"", b"", 1, b"", b""]
    assert len(entry) == CLAIM_WIDTH
    [c] = claims([("1-0", "s.x")], entry)
    assert (c.status, c.handler, c.parent, c.key, c.trace) == ("run", "h", None, None, None)
    with pytest.raises(UnexpectedReply):
        claims([("1-0", "s.x")], entry[:9])  # the old 9-value reading
    with pytest.raises(UnexpectedReply):
        claims([("1-0", "s.x")], [b"later", *entry[1:]])
    assert pairs([b"accepted", b"pending", b"conflict", b"running"]) == [
        Registered("accepted", "pending"),
        Registered("conflict", "running"),
    ]
    with pytest.raises(UnexpectedReply):
        pairs([b"accepted", b"lost"])


async def test_statuses_and_the_layout_come_back_typed(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        acc = await c.send(svc, "h", 1, delay=3600)
        assert acc.state == "scheduled"
        again = await c.scripts.register(k, Registration(id=acc.id, fp="other-fp", handler="h", payload=b"1"))
        assert again == Registered("conflict", "scheduled") and again.status == "conflict"
        assert await c.scripts.retry_now(k, acc.id, "ops") == "not_retrying"
        assert await c.scripts.discard(k, acc.id, "ops", 60_000) == "not_parked"
        assert await c.scripts.release_entry(k, acc.id, 1, "ops") == "not_pending"
        assert await c.scripts.redrive(k, acc.id, "ops") == "not_failed"
        assert await c.scripts.cancel(k, acc.id, 60_000, "ops") == "cancelled"
        assert await c.scripts.cancel(k, acc.id, 60_000, "ops") == "terminal"
        assert await c.scripts.set_layout(k, 3) == Layout(
            3, 3, 1, (await c.layout(svc, fresh=True)).changed_ms
        )
        lay = await c.scripts.set_layout(k, 2)
        assert (lay.partitions, lay.high, lay.previous) == (2, 3, 3)
        await c.redis.delete(k.audit, k.layout)
