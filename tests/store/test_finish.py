"""The terminal transition (lua/lib/finish.lua) as each of its four callers writes it: complete
(the holder's fields left as they were: the status document ignores them once finished), park and
retry with a cancel requested (the holder's fields cleared), the entry acked and deleted, and
cancel of queued work (not held: its entry stays named). None writes 'updated': the status
document's ``updated`` is the latest of the times, here ``finished``. All start the retention on
the record and on the steps and children keys that exist."""

from __future__ import annotations

import json

from reliq import Client
from reliq.store.keys import GROUP, ServiceKeys

from ..conftest import Names, client
from .lua import Held, claimed, run, text

RETENTION = 600_000
ERROR = '{"type":"E","message":"m"}'
FIELDS = (
    "state",
    "finished",
    "updated",
    "owner",
    "lease_until",
    "entry",
    "result",
    "error",
    "reason",
    "cancel",
)


async def record(c: Client, k: ServiceKeys, inv: str) -> dict[str, str | None]:
    return dict(zip(FIELDS, text(await c.redis.hmget(k.inv(inv), *FIELDS)), strict=True))


async def retained(c: Client, k: ServiceKeys, inv: str) -> list[bool]:
    """Record, steps, children, inbox: does each have a TTL within the retention?"""
    return [0 < await c.redis.pttl(key) <= RETENTION for key in k.per_invocation(inv)]


async def with_step_and_child(c: Client, k: ServiceKeys, h: Held) -> None:
    assert await run(c, "step", [k.inv(h.id), k.steps(h.id)], [h.epoch, "s", "1"]) == 1
    keys = [k.inv(h.id), k.children(h.id), k.inbox(h.id)]
    assert await run(c, "link_child", keys, [h.epoch, "child", 1, "h"]) == b"linked"


async def last_event(c: Client, k: ServiceKeys, inv: str) -> list[object]:
    return list(json.loads((await c.redis.hget(k.inv(inv), "tl")).decode().splitlines()[-1]))


async def acked(c: Client, k: ServiceKeys, eid: str) -> bool:
    return not await c.redis.xrange(k.stream, eid, eid) and not await c.redis.xpending_range(
        k.stream, GROUP, eid, eid, 1
    )


async def test_complete_leaves_the_holder_and_retains_only_the_keys_that_exist(
    url: str, names: Names
) -> None:
    k = ServiceKeys(names())
    async with client(url) as c:
        full, bare = await claimed(c, k), await claimed(c, k)
        await with_step_and_child(c, k, full)
        keys = [k.stream, k.minutes, k.done_channel, k.outbox]
        keys += [*k.per_invocation(full.id), *k.per_invocation(bare.id)]
        done = [full.entry, full.epoch, "succeeded", "7", "j"]
        done += [bare.entry, bare.epoch, "cancelled", "", "j"]
        args = [GROUP, RETENTION, *done]
        assert text(await run(c, "complete", keys, args)) == ["ok", "ok"]
        rec = await record(c, k, full.id)
        assert rec["state"] == "succeeded" and rec["result"] == "7" and rec["updated"] is None
        assert (rec["owner"], rec["entry"]) == ("w1", full.entry) and rec["lease_until"]  # left as they were
        doc = await c.get(full.id)
        assert doc is not None and (doc.owner, doc.lease_until) == (None, None)
        assert doc.updated == doc.finished == int(rec["finished"] or 0)
        assert (await last_event(c, k, full.id))[1:4] == ["succeeded", "w1", full.epoch]
        assert await retained(c, k, full.id) == [True, True, True, True]
        assert await retained(c, k, bare.id) == [True, False, False, False]  # no journal: no keys
        assert (await record(c, k, bare.id))["state"] == "cancelled"
        assert await acked(c, k, full.entry) and await acked(c, k, bare.entry)


async def test_park_fails_for_good_clears_the_holder_and_lists_it_parked(url: str, names: Names) -> None:
    k = ServiceKeys(names())
    async with client(url) as c:
        h = await claimed(c, k)
        await with_step_and_child(c, k, h)
        keys = [*k.per_invocation(h.id), k.stream, k.parked, k.minutes, k.done_channel, k.outbox]
        args = [GROUP, h.entry, h.epoch, "attempts", ERROR, h.id, RETENTION]
        assert text(await run(c, "park", keys, args)) == "ok"
        rec = await record(c, k, h.id)
        assert (rec["state"], rec["reason"], rec["error"]) == (
            "failed",
            "attempts",
            ERROR,
        )
        assert (rec["owner"], rec["lease_until"], rec["entry"]) == ("", "", "")
        assert rec["finished"] is not None and rec["updated"] is None
        doc = await c.get(h.id)
        assert doc is not None and doc.updated == doc.finished == int(rec["finished"])
        assert (await last_event(c, k, h.id))[1:5] == ["parked", "w1", h.epoch, "attempts"]
        assert await retained(c, k, h.id) == [True, True, True, True]
        assert await c.redis.zscore(k.parked, h.id) is not None
        assert await acked(c, k, h.entry)
        await c.redis.zrem(k.parked, h.id)


async def test_retry_with_a_cancel_requested_finishes_cancelled(url: str, names: Names) -> None:
    k = ServiceKeys(names())
    async with client(url) as c:
        h = await claimed(c, k)
        assert await c.cancel(h.id) == "cancelling"
        keys = [*k.per_invocation(h.id), k.stream, k.delayed, k.minutes, k.done_channel, k.outbox]
        args = [GROUP, h.entry, h.epoch, 1000, ERROR, h.id, RETENTION]
        assert text(await run(c, "retry", keys, args)) == "cancelled"
        rec = await record(c, k, h.id)
        assert (rec["state"], rec["error"], rec["cancel"]) == ("cancelled", ERROR, "1")
        assert (rec["owner"], rec["lease_until"], rec["entry"]) == ("", "", "")
        assert await retained(c, k, h.id) == [True, False, False, False]
        assert await c.redis.zscore(k.delayed, h.id) is None and await acked(c, k, h.entry)


async def test_cancel_of_queued_work_finishes_it_without_a_holder(url: str, names: Names) -> None:
    svc = names()
    k = ServiceKeys(svc)
    async with client(url) as c:
        acc = await c.send(svc, "h", None)
        eid = (await c.redis.hget(k.inv(acc.id), "entry")).decode()
        keys = [*k.per_invocation(acc.id), k.delayed, k.audit, k.done_channel, k.outbox, k.stream]
        keys += (k.suspended, k.minutes)
        assert text(await run(c, "cancel", keys, [acc.id, RETENTION, ""])) == "cancelled"
        rec = await record(c, k, acc.id)
        assert (rec["state"], rec["cancel"], rec["entry"]) == ("cancelled", "1", eid)  # entry kept
        assert rec["owner"] is None and rec["finished"] is not None and rec["updated"] is None
        doc = await c.get(acc.id)
        assert doc is not None and doc.updated == doc.finished == int(rec["finished"])
        assert (await retained(c, k, acc.id))[0]
        assert text(await run(c, "cancel", keys, [acc.id, RETENTION, ""])) == "terminal"
        await c.redis.delete(k.stream)


async def test_complete_without_journal_keys_asks_for_them_when_the_record_has_some(
    url: str, names: Names
) -> None:
    """An attempt that touched no journal passes the record alone (a smaller call); when the record
    says a journal key exists, nothing is written and the answer is 'keys'."""
    k = ServiceKeys(names())
    async with client(url) as c:
        bare, full = await claimed(c, k), await claimed(c, k)
        await with_step_and_child(c, k, full)
        items = [(bare.id, bare.entry, bare.epoch, "succeeded", b"1", False)]
        items.append((full.id, full.entry, full.epoch, "succeeded", b"2", False))
        assert await c.scripts.complete(k, RETENTION, items) == ["ok", "keys"]
        assert (await record(c, k, bare.id))["state"] == "succeeded"
        assert (await record(c, k, full.id))["state"] == "running"
        assert await c.scripts.complete(k, RETENTION, [(*items[1][:5], True)]) == ["ok"]
        assert await retained(c, k, full.id) == [True, True, True, True]
