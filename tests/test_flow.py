"""Per-key concurrency (issue 14): decoration checks, bad keys refused, per-key FIFO and mutual
exclusion (an independent witness file), waiters hold no worker slot, cancel of a waiter, a
failed or parked holder releases, the suspend rule, and a live change of the limit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest

from reliq import Context, Service
from reliq.store.flow import flow_keys

from .conftest import Names, client, running, wait_until
from .flow_util import ends, mark, replay


class Acct(msgspec.Struct):
    account: str
    n: int = 0


def _svc(names: Names, witness: Path, limit: int = 1, **opts: Any) -> Service:
    svc = Service(names())

    @svc.handler(concurrency_key="account", concurrency_limit=limit, **opts)
    async def work(ctx: Context, req: Acct) -> int:
        mark(witness, "S", req.account, req.n)
        await asyncio.sleep(0.01)  # a window in which a second holder of the key would show
        mark(witness, "E", req.account, req.n)
        return req.n

    return svc


@pytest.mark.parametrize(
    ("opts", "names_option"),
    [
        ({"concurrency_key": "account", "concurrency_limit": 0}, "concurrency_limit"),
        ({"concurrency_key": "account", "concurrency_limit": -1}, "concurrency_limit"),
        ({"concurrency_key": "nope", "concurrency_limit": 1}, "concurrency_key"),
        ({"concurrency_key": "account"}, "concurrency_limit"),
        ({"rate_limit": "100/fortnight"}, "rate_limit"),
        ({"rate_limit": "0/s"}, "rate_limit"),
        ({"rate_limit": "10/s", "burst": 0}, "burst"),
        (
            {"rate_limit": "10/s", "rate_key": "other", "concurrency_key": "account", "concurrency_limit": 1},
            "rate_key",
        ),
        ({"rate_key": "account"}, "rate_key"),
    ],
)
def test_a_bad_flow_spec_fails_at_decoration_naming_the_option(
    opts: dict[str, Any], names_option: str
) -> None:
    svc = Service("flowcheck")
    with pytest.raises(ValueError, match=names_option):

        @svc.handler(**opts)
        async def work(ctx: Context, req: Acct) -> None: ...


async def test_a_missing_or_bad_key_is_refused_and_nothing_is_placed(
    url: str, names: Names, tmp_path: Path
) -> None:
    svc = _svc(names, tmp_path / "w")
    async with running(svc, url), client(url) as c:
        k = c.keys(svc.name)
        for bad in ({"n": 1}, {"account": 1.5}, {"account": None}, {"account": ["a"]}, {"account": True}):
            with pytest.raises(ValueError, match="flow key"):
                await c.send(svc.name, "work", bad)
        assert await c.redis.xlen(k.stream) == 0
        assert [x async for x in c.redis.scan_iter(match=k.inv_prefix + "*")] == []
        ok = await c.send(svc.name, "work", {"account": 7})  # an integer key is fine (the
        assert ok.status == "accepted"  # handler then refuses its input: parked, not our concern)


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
@pytest.mark.parametrize("limit", [1, 3])
async def test_per_key_fifo_and_at_most_limit_running(
    url: str, names: Names, tmp_path: Path, limit: int
) -> None:
    witness = tmp_path / "witness"
    svc = _svc(names, witness, limit=limit)
    async with client(url) as c:
        async with running(svc, url, concurrency=1):  # publishes the spec
            pass
        ids = [(await c.send(svc.name, "work", {"account": f"a{i % 3}", "n": i})).id for i in range(30)]
        async with running(svc, url, concurrency=20):  # a backlog: the limit binds
            await wait_until(lambda: ends(witness) == 30, timeout=30, what="all 30 done")
        for i in ids:
            assert (await c.get(i)).state == "succeeded"  # type: ignore[union-attr]
    most, order = replay(witness)
    assert max(most.values()) == limit  # the limit was reached, never passed
    for key, started in order.items():
        if limit == 1:
            assert started == sorted(started), key  # per-key FIFO: registration order
        assert len(started) == 10


async def test_waiters_hold_no_worker_slot(url: str, names: Names, tmp_path: Path) -> None:
    witness = tmp_path / "witness"
    svc = Service(names())
    gate = asyncio.Event()

    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> None:
        mark(witness, "S", req.account, req.n)
        if req.account == "busy" and req.n == 0:
            await gate.wait()
        mark(witness, "E", req.account, req.n)

    async with client(url) as c, running(svc, url, concurrency=2):
        k = c.keys(svc.name)
        for i in range(50):
            await c.send(svc.name, "work", {"account": "busy", "n": i})
        await wait_until(lambda: replay(witness)[1].get("busy") == [0], what="the first of busy runs")
        others = [await c.send(svc.name, "work", {"account": f"o{i}", "n": i}) for i in range(10)]
        for o in others:  # one slot is taken by busy/0; 49 waiters take none
            assert await c.result(o.id, timeout=10) is None
        doc = await c.get((await c.redis.zrange(flow_keys(k)[3], 0, 0))[0].decode().split("\0")[-1])
        assert doc is not None and doc.state == "queued" and doc.waiting_for == "concurrency"
        assert await c.redis.zlexcount(flow_keys(k)[3], "[work\0busy\0", "(work\0busy\1") == 49
        assert await c.redis.xlen(k.stream) == 1  # the holder's; waiters have no stream entry
        gate.set()
        await wait_until(lambda: ends(witness) == 60, timeout=30, what="every busy one done")
    assert replay(witness)[1]["busy"] == list(range(50))


async def test_a_cancelled_waiter_leaves_the_line_and_a_failed_holder_releases(
    url: str, names: Names, tmp_path: Path
) -> None:
    witness = tmp_path / "witness"
    svc = Service(names())
    gate = asyncio.Event()

    @svc.handler(concurrency_key="account", concurrency_limit=1, max_attempts=1)
    async def work(ctx: Context, req: Acct) -> None:
        mark(witness, "S", req.account, req.n)
        if req.n == 0:
            await gate.wait()
            raise RuntimeError("fails for good: parked, its permit goes to the next")
        mark(witness, "E", req.account, req.n)

    async with client(url) as c, running(svc, url, concurrency=4):
        sent = [await c.send(svc.name, "work", {"account": "k", "n": i}) for i in range(3)]
        await wait_until(lambda: replay(witness)[1].get("k") == [0], what="the holder runs")
        assert await c.cancel(sent[1].id) == "cancelled"  # a waiter: out of the line at once
        gate.set()
        await wait_until(lambda: ends(witness) == 1, what="the third one ran")
        assert (await c.get(sent[0].id)).state == "failed"  # type: ignore[union-attr]
        assert (await c.get(sent[1].id)).state == "cancelled"  # type: ignore[union-attr]
    assert replay(witness)[1]["k"] == [0, 2]


async def test_a_live_override_of_the_limit_takes_effect(url: str, names: Names, tmp_path: Path) -> None:
    witness = tmp_path / "witness"
    svc = _svc(names, witness, limit=1)
    async with client(url) as c, running(svc, url, concurrency=10):
        await c.set_flow_override(svc.name, "work", limit=4)
        for i in range(12):
            await c.send(svc.name, "work", {"account": "k", "n": i})
        await wait_until(lambda: ends(witness) == 12, timeout=30, what="all done")
        await c.set_flow_override(svc.name, "work", clear=True)
        assert await c.redis.hget(flow_keys(c.keys(svc.name))[0], "work!") is None
    assert 1 < replay(witness)[0]["k"] <= 4
