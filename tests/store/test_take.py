"""take.lua: a worker's plain XREAD found new entries; one call delivers them to the consumer
(XREADGROUP '>') and claims them. What it names but does not deliver (another consumer read it
first) is skipped with nothing written; what it delivers unnamed (the XREAD started behind the
group) comes back for a plain claim; the mark it returns is where the next XREAD starts, past
every entry the group has delivered (so a stale mark cannot wake the worker at once, again and
again)."""

from __future__ import annotations

import pytest

from reliq import Client
from reliq.store.keys import GROUP, ServiceKeys
from reliq.store.replies import CLAIM_WIDTH, UnexpectedReply, taken

from ..conftest import Names, client
from .lua import run


async def _sent(c: Client, k: ServiceKeys, svc: str, n: int) -> list[tuple[str, str]]:
    """``n`` invocations sent, and their entries as a plain XREAD from the start finds them."""
    await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
    for _ in range(n):
        await c.send(svc, "job")
    [[_, read]] = await c.redis.xread({k.stream: "0"}, count=n)
    return [(eid.decode(), f[b"i"].decode()) for eid, f in read]


async def _pending(c: Client, k: ServiceKeys) -> dict[str, str]:
    """entry id -> the consumer it is pending on."""
    rows = await c.redis.xpending_range(k.stream, GROUP, "-", "+", 100)
    return {r["message_id"].decode(): r["consumer"].decode() for r in rows}


async def test_a_take_delivers_and_claims_what_the_xread_found(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        entries = await _sent(c, k, svc, 3)
        t = await c.scripts.take(k, "w", 30_000, entries)
        assert [(x.status, x.epoch, x.entry) for x in t.claims] == [("run", 1, e) for e, _ in entries]
        assert (t.mark, t.extra) == (entries[-1][0], [])
        assert await _pending(c, k) == {e: "w" for e, _ in entries}
        for _, inv in entries:
            assert (await c.redis.hmget(k.inv(inv), "state", "owner")) == [b"running", b"w"]
        # nothing new: a take delivers nothing, and the mark stays past the last entry
        again = await c.scripts.take(k, "w", 30_000, entries)
        assert [x.status for x in again.claims] == ["skip"] * 3
        assert (again.mark, again.extra) == (entries[-1][0], [])
        assert [x.epoch for x in await c.scripts.claim(k, "w", 30_000, entries)] == [2, 2, 2]  # untouched


async def test_what_another_consumer_read_first_is_skipped_nothing_written(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        entries = await _sent(c, k, svc, 4)
        await c.redis.xreadgroup(GROUP, "other", {k.stream: ">"}, count=2)  # after our XREAD
        t = await c.scripts.take(k, "w", 30_000, entries)
        assert [x.status for x in t.claims] == ["skip", "skip", "run", "run"]
        assert (t.mark, t.extra) == (entries[-1][0], [])  # fewer delivered than named: the stream's last
        pending = await _pending(c, k)
        assert [pending[e] for e, _ in entries] == ["other", "other", "w", "w"]  # not acked, not moved
        for _, inv in entries[:2]:
            assert (await c.redis.hmget(k.inv(inv), "state", "owner", "epoch")) == [b"pending", None, None]


async def test_entries_delivered_unnamed_come_back_for_a_plain_claim(url: str, names: Names) -> None:
    """The XREAD started behind the group (another consumer read the two it named): the take's
    XREADGROUP delivers the next two, unnamed; it claims nothing of them and returns them."""
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        entries = await _sent(c, k, svc, 4)
        await c.redis.xreadgroup(GROUP, "other", {k.stream: ">"}, count=2)
        t = await c.scripts.take(k, "w", 30_000, entries[:2])
        assert [x.status for x in t.claims] == ["skip", "skip"]
        assert (t.mark, t.extra) == (entries[3][0], entries[2:])  # as many delivered as named: the last
        for _, inv in entries[2:]:
            assert await c.redis.hget(k.inv(inv), "state") == b"pending"  # delivered, not claimed
        assert [x.status for x in await c.scripts.claim(k, "w", 30_000, t.extra)] == ["run", "run"]


async def test_a_re_sent_take_answers_the_same_claims(url: str, names: Names) -> None:
    """The same call again (a reply lost, redis-py re-sends it): its entries are delivered
    already, yet the claims it made come back as they were, nothing bumped."""
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        entries = await _sent(c, k, svc, 2)
        keys = [k.stream, *(k.inv(i) for _, i in entries)]
        args = [GROUP, "w", 30_000, "tok-1", *(e for e, _ in entries)]
        first = taken(entries, await run(c, "take", keys, args))
        second = taken(entries, await run(c, "take", keys, args))
        assert second.claims == first.claims
        assert [(x.status, x.epoch) for x in first.claims] == [("run", 1), ("run", 1)]
        assert await _pending(c, k) == {e: "w" for e, _ in entries}


def test_a_take_reply_of_the_wrong_shape_is_refused() -> None:
    entry = [b"skip", *[b""] * (CLAIM_WIDTH - 1)]
    t = taken([("1-0", "s.x")], [*entry, b"", b"2-0", b"s.y"])
    assert (t.mark, t.extra, t.claims[0].status) == (None, [("2-0", "s.y")], "skip")
    for bad in ([*entry], [*entry, b"1-0", b"2-0"]):  # no mark; half a pair
        with pytest.raises(UnexpectedReply):
            taken([("1-0", "s.x")], bad)
