"""Durable function trees across worker crashes, with real processes: a SIGKILLed worker leaves
suspended parents and running children behind, another worker finishes every tree exactly once
(each step's side effect once, counted in a witness file outside Redis); a child outcome written
by the complete script but never relayed (its worker died first) stays in the outbox until a
worker delivers it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.exceptions import ResponseError

from reliq import Client
from reliq.store.keys import GROUP, ServiceKeys

from ..conftest import Names, wait_until
from .procs import Workers


@pytest.fixture
def workers(url: str, names: Names, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(url, names("cp"), names("cc"), tmp_path)
    yield w
    w.stop_all()


async def _states(c: Client, ids: list[str]) -> set[str | None]:
    return {await c.state(i) for i in ids}


def _in_state(c: Client, ids: list[str], state: str):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await _states(c, ids) == {state}

    return check


async def _children(c: Client, parent_ids: list[str]) -> list[str]:
    """The one child of each parent (empty until every parent has linked it)."""
    out = []
    for p in parent_ids:
        inv = await c.get(p)
        if inv is None or len(inv.children) != 1:
            return []
        out.append(inv.children[0])
    return out


def _once(w: Workers, event: str, ids: list[str]) -> None:
    counts = w.effects(event)
    assert dict(counts) == dict.fromkeys(ids, 1), f"{event} not exactly once per invocation: {counts}"


async def test_sigkill_while_parents_are_suspended(url: str, workers: Workers) -> None:
    """Parents suspended on children that wait for a promise: the worker dies holding nothing;
    the promises are resolved with no worker up, and a new worker finishes every tree."""
    async with Client(url) as c:
        a = workers.start("a")
        ids = [(await c.send(workers.parent, "parent", ["gated", n])).id for n in range(10)]
        kids: list[str] = await wait_until(lambda: _children(c, ids), what="children linked")
        await wait_until(_in_state(c, ids + kids, "suspended"), what="parents and children suspended")
        workers.kill(a)
        for k in kids:
            assert await c.resolve(k, "go", 1000) == "resumed"
        b = workers.start("b")
        assert [await c.result(i, 30) for i in ids] == [n * 2 + 1000 + 1 for n in range(10)]
        assert await _states(c, ids + kids) == {"succeeded"}
    _once(workers, "before", ids)
    _once(workers, "effect", kids)
    _once(workers, "after", ids)
    assert workers.pids("before") == workers.pids("effect") == {a.pid}
    assert workers.pids("after") == {b.pid}


async def test_sigkill_while_children_run(url: str, workers: Workers) -> None:
    """The worker dies while the children run (their step done, their slot held) and their
    parents are suspended: the new worker reclaims the children, which replay their step (no
    second effect) and finish; the relay wakes the parents."""
    async with Client(url) as c:
        a = workers.start("a", hold=60.0)
        ids = [(await c.send(workers.parent, "parent", ["child", n])).id for n in range(5)]
        kids: list[str] = await wait_until(lambda: _children(c, ids), what="children linked")

        async def stepped() -> bool:  # journaled, not only run: a kill before that re-runs it
            docs = [await c.get(k) for k in kids]
            return all(d is not None and d.state == "running" and "effect" in d.steps for d in docs)

        await wait_until(stepped, what="children running past their step")
        await wait_until(_in_state(c, ids, "suspended"), what="parents suspended")
        workers.kill(a)
        b = workers.start("b")
        assert [await c.result(i, 30) for i in ids] == [n * 2 + 1 for n in range(5)]
        for k in kids:
            doc = await c.get(k)
            assert doc is not None and doc.state == "succeeded" and doc.crashes == 1
    _once(workers, "before", ids)
    _once(workers, "effect", kids)
    _once(workers, "after", ids)
    assert workers.pids("effect") == {a.pid} and workers.pids("after") == {b.pid}


@pytest.mark.semantics  # the outcome crosses slots on a Cluster
async def test_a_child_outcome_the_relay_never_delivered_waits_in_the_outbox(
    url: str, workers: Workers
) -> None:
    """The child's worker crashed between the complete script (which wrote the outcome and the
    outbox message in one call) and the relay: done here by claiming and completing the children
    with the scripts themselves while no worker runs. The messages stay in the outbox, the
    parents stay suspended; the next worker's relay delivers them and the parents finish."""
    ck = ServiceKeys(workers.child)
    async with Client(url) as c:
        a = workers.start("a", app="parents_only")  # no worker for the children
        ids = [(await c.send(workers.parent, "parent", ["child", n])).id for n in range(5)]
        kids: list[str] = await wait_until(lambda: _children(c, ids), what="children linked")
        await wait_until(_in_state(c, ids, "suspended"), what="parents suspended")
        workers.kill(a)

        with contextlib.suppress(ResponseError):  # BUSYGROUP: the group exists
            await c.redis.xgroup_create(ck.stream, GROUP, id="0", mkstream=True)
        read = await c.redis.xreadgroup(GROUP, "crashed", {ck.stream: ">"}, count=100)
        entries = [(e.decode(), f[b"i"].decode()) for e, f in read[0][1]]
        assert sorted(i for _, i in entries) == sorted(kids)
        claims = await c.scripts.claim(ck, "crashed", 30_000, entries)
        assert [x.status for x in claims] == ["run"] * len(kids)
        done = [
            (i, e, x.epoch, "succeeded", str(100 + kids.index(i)).encode())
            for (e, i), x in zip(entries, claims, strict=True)
        ]
        assert await c.scripts.complete(ck, 60_000, done) == ["ok"] * len(kids)

        assert await c.redis.xlen(ck.outbox) == len(kids)  # written, not delivered
        assert await _states(c, ids) == {"suspended"}
        workers.start("b")
        assert [await c.result(i, 30) for i in ids] == [100 + n + 1 for n in range(5)]
        assert await c.redis.xlen(ck.outbox) == 0
        assert await c.redis.xlen(ServiceKeys(workers.parent).outbox) == 0
    assert not workers.effects("effect")  # the children never ran in a worker
    _once(workers, "after", ids)
