"""Priorities (reliq.store.priority): one stream per level, the weighted read rule, and the level
kept across retries, suspension and down a function tree. The backlogs are placed before the
worker starts, so the order of starts is the read rule's alone (concurrency 1: one start per read)."""

from __future__ import annotations

import asyncio

import pytest

from reliq import Client, Context, Retry, Service
from reliq.admin import waits
from reliq.admin.detail import detail
from reliq.admin.intake import intake
from reliq.admin.overview import service_overview
from reliq.admin.pending import pending
from reliq.store.priority import quotas
from tests.conftest import Names, client, running, wait_until


def test_the_read_pattern_gives_six_three_one_in_every_ten() -> None:
    turn, seen = 0, [0, 0, 0]
    for n in (1, 3, 7, 1, 8):  # reads of any size walk the same cycle
        q, turn = quotas(turn, n)
        seen = [a + b for a, b in zip(seen, q, strict=True)]
    assert seen == [6, 12, 2]  # normal, high, low over 20 slots


@pytest.mark.semantics
async def test_high_priority_work_starts_before_a_normal_backlog(url: str, names: Names) -> None:
    svc = Service(names())
    starts: list[str] = []

    @svc.handler
    async def job(ctx: Context, tag: str) -> None:
        starts.append(tag)

    async with client(url) as c:
        for i in range(30):
            await c.send(svc.name, "job", f"n{i}")
        for i in range(5):
            await c.send(svc.name, "job", f"h{i}", priority="high")
        async with running(svc, url, concurrency=1):
            await wait_until(lambda: len(starts) == 35, what="every job to run")
    assert starts[0] == "h0"  # the first read of a fresh worker takes the high one
    # 6:3:1, and low's idle share goes to high first: the five high ones within the first seven
    assert {s for s in starts[:7] if s.startswith("h")} == {f"h{i}" for i in range(5)}
    assert [s for s in starts if s.startswith("n")] == [f"n{i}" for i in range(30)]  # FIFO per level


@pytest.mark.semantics
async def test_low_priority_work_is_not_starved_by_high(url: str, names: Names) -> None:
    svc = Service(names())
    starts: list[str] = []

    @svc.handler
    async def job(ctx: Context, tag: str) -> None:
        starts.append(tag)

    async with client(url) as c:
        for i in range(10):
            await c.send(svc.name, "job", f"l{i}", priority="low")
        for i in range(40):
            await c.send(svc.name, "job", f"h{i}", priority="high")
        async with running(svc, url, concurrency=1):
            await wait_until(lambda: len(starts) == 50, what="every job to run")
    low = sum(s.startswith("l") for s in starts[:30])
    assert 2 <= low <= 5, starts[:30]  # about one start in ten while high has a backlog


@pytest.mark.semantics
async def test_a_retry_and_a_resumed_parent_keep_their_priority(url: str, names: Names) -> None:
    svc = Service(names())
    seen: list[tuple[str, str]] = []
    gate = asyncio.Event()

    @svc.handler
    async def flaky(ctx: Context) -> str:
        seen.append(("flaky", ctx.priority))
        if ctx.attempt == 1:
            raise Retry(delay=0)
        return "ok"

    @svc.handler
    async def child(ctx: Context) -> str:
        seen.append(("child", ctx.priority))
        await gate.wait()  # until its parent suspended
        return "c"

    @svc.handler(suspend_after=0.0)  # suspends at its first remote wait, resumes when the child ends
    async def parent(ctx: Context) -> str:
        seen.append(("parent", ctx.priority))
        return str(await ctx.call(svc.name, "child"))

    async with running(svc, url, concurrency=4), client(url) as c:
        a = await c.send(svc.name, "flaky", priority="low")
        b = await c.send(svc.name, "parent", priority="high")
        assert await c.result(a.id, timeout=15) == "ok"
        await wait_until(lambda: _suspended(c, b.id), what="the parent to suspend")
        gate.set()
        assert await c.result(b.id, timeout=15) == "c"
    assert [p for h, p in seen if h == "flaky"] == ["low", "low"]  # the retry went to the low stream
    assert [p for h, p in seen if h == "parent"] == ["high", "high"]  # resumed on the high stream
    assert [p for h, p in seen if h == "child"] == ["high"]  # a child inherits high or low


async def _suspended(c: Client, inv: str) -> bool:
    got = await c.get(inv)
    return got is not None and got.state == "suspended"


async def test_a_handler_default_applies_when_a_send_gives_none(url: str, names: Names) -> None:
    svc = Service(names())
    seen: list[tuple[str, str]] = []

    @svc.handler(priority="low")
    async def report(ctx: Context, tag: str) -> None:
        seen.append((tag, ctx.priority))

    async with running(svc, url, concurrency=2), client(url) as c:
        await c.send(svc.name, "report", "default")  # by name: the default comes from Redis
        await c.call(svc.name, "report", "given", priority="high", timeout=15)  # call takes it too
        await wait_until(lambda: len(seen) == 2, what="both to run")
    assert sorted(seen) == [("default", "low"), ("given", "high")]


async def test_a_bad_priority_is_refused_before_anything_is_written(url: str, names: Names) -> None:
    svc = Service(names())
    async with client(url) as c:
        with pytest.raises(ValueError, match="priority"):
            await c.send(svc.name, "job", None, priority="urgent")  # type: ignore[typeddict-item]
        assert not await c.redis.exists(*c.keys(svc.name).streams)
    with pytest.raises(ValueError, match="priority"):
        svc.handler(priority="urgent")  # type: ignore[call-overload]


async def test_operators_see_work_of_every_level(url: str, names: Names) -> None:
    svc = Service(names())
    gate = asyncio.Event()

    @svc.handler
    async def job(ctx: Context) -> None:
        await gate.wait()

    async with client(url) as c:
        ids = [(await c.send(svc.name, "job", priority=p)).id for p in ("high", "normal", "low")]
        why = [await waits.reason_of(c, i) for i in ids]  # a waiting non-normal one says its level
        assert [w.text for w in why if w] == ["priority high", "waiting for a worker", "priority low"]
        assert (await c.counts(svc.name)).levels == {"high": 1, "normal": 1, "low": 1}
        assert (await intake(c, svc.name)).backlog == {"high": 1, "normal": 1, "low": 1}
        async with running(svc, url, concurrency=2):  # one read of two: high and normal run
            await wait_until(lambda: _running(c, ids[:2]), what="the high and normal ones to run")
            page = await pending(c, svc.name)
            assert page.total == 2 and {e.invocation_id for e in page.items} == set(ids[:2])
            doc = await service_overview(c, svc.name)
            assert (doc.stream_length, doc.pending) == (3, 2)
            assert (await c.counts(svc.name)).backlog == 3
            d = await detail(c, ids[0])
            assert d is not None and d.pending_entry is not None  # found on the high stream's pending list
            gate.set()
            for i in ids:
                await c.result(i, timeout=15)


async def _running(c: Client, ids: list[str]) -> bool:
    return [await c.state(i) for i in ids] == ["running"] * len(ids)
