"""Cancelling the root of a three-level tree whose leaves are running, waiting for a promise,
sleeping durably and not started yet (delayed): every invocation ends ``cancelled`` within
seconds, the compensation of each handler that catches ``Cancelled`` runs exactly once, and the
delayed leaf never starts."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from reliq import App, Cancelled, Client, Context, Service

from ..conftest import Names, client, running, wait_until

LATE = 2.5  # seconds: the delayed leaf would start this long after its parent sent it


@pytest.mark.semantics  # the cancel crosses slots (three services) on a Cluster
async def test_cancel_of_the_root_ends_the_whole_tree(url: str, names: Names) -> None:
    top, mid, leaf = Service(names("ctop")), Service(names("cmid")), Service(names("cleaf"))
    compensated: Counter[str] = Counter()
    started: list[str] = []
    interrupted: list[str] = []

    def compensate(inv: str) -> None:
        compensated[inv] += 1

    @leaf.handler
    async def runner(ctx: Context) -> None:
        started.append(ctx.id)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            interrupted.append(ctx.id)
            raise

    @leaf.handler
    async def waiter(ctx: Context) -> None:
        await ctx.promise("never")

    @leaf.handler
    async def sleeper(ctx: Context) -> None:
        await ctx.sleep(3600)

    @leaf.handler
    async def late(ctx: Context) -> None:
        started.append(ctx.id)

    @mid.handler
    async def branch(ctx: Context) -> None:
        kids = [await ctx.send(leaf.name, h) for h in ("runner", "waiter", "sleeper")]
        kids.append(await ctx.send(leaf.name, "late", delay=LATE))
        try:
            for k in kids:
                await ctx.result(k)
        except Cancelled:
            await ctx.step("compensate", compensate, ctx.id)
            raise

    @top.handler
    async def root(ctx: Context) -> None:
        try:
            await asyncio.gather(ctx.call(mid.name, "branch"), ctx.call(mid.name, "branch"))
        except Cancelled:
            await ctx.step("compensate", compensate, ctx.id)
            raise

    app = App([top, mid, leaf])
    async with running(app, url, concurrency=20, suspend_after=0.05), client(url) as c:
        acc = await c.send(top.name, "root")
        tree = await wait_until(lambda: _tree(c, acc.id), what="the tree in place")
        root_id, mids, leaves = tree
        assert await c.cancel(root_id) == "cancelling"
        t0 = time.monotonic()
        await wait_until(
            lambda: _all_cancelled(c, [root_id, *mids, *leaves]), timeout=10, what="all cancelled"
        )
        took = time.monotonic() - t0
        docs = [d for d in [await c.get(i) for i in leaves] if d is not None]
        runners = [d.id for d in docs if d.handler == "runner"]
        # the delayed leaves never start: a sentinel delayed past their due time runs, they do not
        due = max(d.due or 0 for d in docs if d.handler == "late") / 1000
        sentinel = await c.send(leaf.name, "late", delay=max(0.0, due - time.time()) + 0.2)
        await c.result(sentinel.id, 10)
        assert {await c.state(i) for i in [root_id, *mids, *leaves]} == {"cancelled"}
    assert took < 5, f"the tree took {took:.1f} s to end cancelled"
    assert dict(compensated) == dict.fromkeys([root_id, *mids], 1)
    assert sorted(interrupted) == sorted(runners) and len(runners) == 2
    assert sorted(started) == sorted([*runners, sentinel.id])


async def _tree(c: Client, root_id: str) -> tuple[str, list[str], list[str]] | None:
    """(root, its 2 branches, their 8 leaves) once every one is registered and where the test
    wants it: the root and branches suspended, the runners running, waiters and sleepers
    suspended, the late leaves delayed."""
    root = await c.get(root_id)
    if root is None or root.state != "suspended" or len(root.children) != 2:
        return None
    mids, leaves = list(root.children), []
    for m in mids:
        doc = await c.get(m)
        if doc is None or doc.state != "suspended" or len(doc.children) != 4:
            return None
        leaves += doc.children
    want = {"runner": "running", "waiter": "suspended", "sleeper": "suspended", "late": "scheduled"}
    for i in leaves:
        doc = await c.get(i)
        if doc is None or want[doc.handler] != doc.state:
            return None
    return root_id, mids, leaves


async def _all_cancelled(c: Client, ids: list[str]) -> bool:
    return {await c.state(i) for i in ids} == {"cancelled"}
