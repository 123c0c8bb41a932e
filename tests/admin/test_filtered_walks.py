"""A handler filter is applied while walking, not after reading one window: the parked view and
the pending view follow their cursor server side until `limit` matches (or a scan budget), and
the bulk redrive walks past other handlers' parked invocations, so the documented loops (next
page while `next_cursor`; redrive again while `next_cursor` is set) reach every match."""

from __future__ import annotations

from typing import Any

import pytest

from reliq import Client
from reliq.admin import parked as parked_sets
from reliq.admin.actions import redrive_parked
from reliq.admin.overview import parked, pending
from reliq.store.keys import GROUP, SERVICES

from ..conftest import Names, client
from ..gateway.conftest import gateway
from .conftest import ok


async def park(c: Client, svc: str, plan: list[tuple[str, int]]) -> list[str]:
    """Invocations of the named handlers, parked at the given times (no worker runs), of a
    service listed as registered."""
    await c.redis.sadd(SERVICES, svc)
    ids = []
    for handler, at in plan:
        inv = (await c.send(svc, handler, None)).id
        k = c.keys_of(inv)
        await c.redis.hset(k.inv(inv), mapping={"state": "failed", "entry": "", "reason": "terminal"})
        await c.redis.zadd(k.parked, {inv: at})
        ids.append(inv)
    return ids


async def forget(c: Client, svc: str, ids: list[str]) -> None:
    for inv in ids:
        await c.cancel(inv)  # a queued one: cancelled (its record expires); a failed one: terminal
    await c.redis.delete(c.keys(svc).parked, *[c.keys_of(i).inv(i) for i in ids])
    await c.redis.srem(SERVICES, svc)


def plan() -> list[tuple[str, int]]:
    """boom0 the oldest, then 12 term, then boom1 and boom2 the newest."""
    return [("boom", 500), *[("term", 1000 + i) for i in range(12)], ("boom", 2000), ("boom", 2001)]


async def test_a_filtered_parked_page_follows_the_cursor_until_it_has_limit_matches(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = names("flt")
    async with client(url) as c, gateway(url) as http:
        ids = await park(c, svc, plan())
        booms = [ids[-1], ids[-2], ids[0]]  # newest first
        first = await parked(c, svc, handler="boom", limit=2)
        assert [i.invocation_id for i in first.items] == booms[:2] and first.next_cursor
        second = await parked(c, svc, handler="boom", limit=2, cursor=first.next_cursor)
        assert [i.invocation_id for i in second.items] == booms[2:] and second.next_cursor is None
        assert first.total == 15  # the sets, not narrowed by the filter
        doc = ok(await http.get(f"/admin/services/{svc}/parked", params={"handler": "boom", "limit": 2}))
        assert [i["invocation_id"] for i in doc["items"]] == booms[:2]

        monkeypatch.setattr(parked_sets, "SCAN_BUDGET", 5)  # a page examines 5 members at most
        seen, cursor, pages = [], None, 0
        while True:
            page = await parked(c, svc, handler="boom", limit=3, cursor=cursor)
            seen += [i.invocation_id for i in page.items]
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == booms and pages == 3  # 15 members, 5 per page
        await forget(c, svc, ids)


async def test_bulk_redrive_with_a_handler_walks_past_other_handlers(
    url: str, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = names("flt")
    async with client(url) as c, gateway(url) as http:
        ids = await park(c, svc, plan())
        booms, terms = [ids[0], ids[-2], ids[-1]], ids[1:-2]
        one = await redrive_parked(c, svc, who="ops", handler="boom", limit=1)
        assert one.redriven == booms[:1] and one.next_cursor and one.remaining > 0
        # without the cursor too: the walk goes past the 12 older term ones
        doc = ok(
            await http.post(f"/admin/services/{svc}/parked/redrive", params={"handler": "boom", "limit": 1})
        )
        assert doc["redriven"] == booms[1:2] and doc["examined"] == 13 and doc["next_cursor"]
        last = await redrive_parked(c, svc, who="ops", handler="boom", limit=5, cursor=doc["next_cursor"])
        assert last.redriven == booms[2:] and last.next_cursor is None and last.remaining == 0
        assert [await c.state(i) for i in booms] == ["pending"] * 3
        assert {await c.state(i) for i in terms} == {"failed"}  # the others are left parked

        for inv in booms:  # park the three again, and walk with a budget of 4 members per call
            await c.redis.hset(c.keys_of(inv).inv(inv), mapping={"state": "failed", "entry": ""})
        await c.redis.zadd(c.keys(svc).parked, {booms[0]: 500, booms[1]: 2000, booms[2]: 2001})
        monkeypatch.setattr(parked_sets, "SCAN_BUDGET", 4)
        got: list[str] = []
        calls: list[Any] = []
        cursor = None
        while True:
            r = await redrive_parked(c, svc, who="ops", handler="boom", limit=500, cursor=cursor)
            assert r.examined <= 4 and (r.remaining > 0) == (r.next_cursor is not None)
            got += r.redriven
            calls.append(r)
            cursor = r.next_cursor
            if cursor is None:
                break
        assert got == booms and len(calls) == 4  # 15 members, 4 per call
        assert {await c.state(i) for i in terms} == {"failed"}
        await forget(c, svc, ids)


async def test_a_filtered_pending_page_follows_the_cursor(url: str, names: Names) -> None:
    svc = names("flt")
    async with client(url) as c:
        await c.redis.sadd(SERVICES, svc)
        handlers = ["b", *["a"] * 8, "b", "b"]
        ids = [(await c.send(svc, h, None)).id for h in handlers]
        k = c.keys(svc)
        await c.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        await c.redis.xreadgroup(GROUP, "w", {k.stream: ">"}, count=100)
        first = await pending(c, svc, handler="b", limit=2)
        assert [e.invocation_id for e in first.items] == [ids[0], ids[9]] and first.next_cursor
        second = await pending(c, svc, handler="b", limit=2, cursor=first.next_cursor)
        assert [e.invocation_id for e in second.items] == [ids[10]] and second.next_cursor is None
        assert first.total == 11
        for inv in ids:
            await c.cancel(inv)
        await c.redis.srem(SERVICES, svc)
