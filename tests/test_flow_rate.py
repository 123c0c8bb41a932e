"""Rate limits (issue 14): GCRA in Lua, cluster-wide; over the limit is delayed, never dropped;
other keys run unhindered; the record says why it waits. And the suspend rule of per-key permits."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from reliq import Context, Service

from .conftest import Names, client, running, wait_until
from .flow_util import mark, most_in_window, replay, stamp, starts


class Acct(msgspec.Struct):
    account: str
    n: int = 0


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_a_keyed_rate_limit_holds_across_workers_and_spares_other_keys(
    url: str, names: Names, tmp_path: Path
) -> None:
    witness = tmp_path / "starts"
    svc = Service(names())

    @svc.handler(rate_limit="20/s", rate_key="account", burst=5)
    async def call_api(ctx: Context, req: Acct) -> None:
        stamp(witness, req.account, req.n)

    async with client(url) as c, running(svc, url, concurrency=20), running(svc, url, concurrency=20):
        t0 = time.time()
        sent = [await c.send(svc.name, "call_api", {"account": "hot", "n": i}) for i in range(65)]
        cold = [await c.send(svc.name, "call_api", {"account": f"c{i}", "n": i}) for i in range(10)]
        for x in cold:  # one start each: the hot key's bucket does not slow them down
            await c.result(x.id, timeout=5)
        cold_done = time.time() - t0
        doc = await c.get(sent[-1].id)
        assert doc is not None and doc.state == "scheduled" and doc.waiting_for == "rate"
        assert doc.wait_until is not None and doc.wait_until > time.time() * 1000 + 1000
        await wait_until(
            lambda: len(starts(witness).get("hot", [])) == 65, timeout=20, what="all hot started"
        )
    hot = starts(witness)["hot"]
    assert cold_done < 2.0, cold_done  # hot needs ~3 s: 5 at once, then 20/s
    assert hot[-1] - hot[0] >= (65 - 5) / 20 * 0.9  # delayed, none dropped
    for t in (0.5, 1.0, 2.0, 3.0):  # from the first send: never early
        assert sum(1 for x in hot if x <= t0 + t) <= 20 * t + 5 + 1, t  # +1: clock rounding
    # sliding windows: a start may be late by up to the promote loop's pause (1 s), never early
    assert most_in_window(hot, 1.0) <= 20 * (1.0 + 1.0) + 5 + 1


async def test_a_live_rate_override_takes_effect(url: str, names: Names, tmp_path: Path) -> None:
    witness = tmp_path / "starts"
    svc = Service(names())

    @svc.handler(rate_limit="1/h")
    async def call_api(ctx: Context, req: Acct) -> None:
        stamp(witness, "all", req.n)

    async with client(url) as c, running(svc, url, concurrency=10):
        first = await c.send(svc.name, "call_api", {"account": "a"})
        await c.result(first.id, timeout=5)
        late = await c.send(svc.name, "call_api", {"account": "a", "n": 1})
        doc = await c.get(late.id)
        assert doc is not None and doc.waiting_for == "rate"  # an hour away
        await c.set_flow_override(svc.name, "call_api", rate_limit="0/s")  # lifted: new sends run
        now = await c.send(svc.name, "call_api", {"account": "a", "n": 2})
        await c.result(now.id, timeout=5)
        await c.cancel(late.id)
        await c.set_flow_override(svc.name, "call_api", clear=True)


@pytest.mark.parametrize("keeps", [True, False])
async def test_a_suspended_holder_keeps_or_releases_its_permit(
    url: str, names: Names, tmp_path: Path, keeps: bool
) -> None:
    witness = tmp_path / "witness"
    svc = Service(names())

    @svc.handler(concurrency_key="account", concurrency_limit=1, suspended_keeps_permit=keeps)
    async def work(ctx: Context, req: Acct) -> None:
        mark(witness, "S", req.account, req.n)
        if req.n == 0:
            await ctx.sleep(0.6)  # durable: it suspends (suspend_after=0)
        mark(witness, "E", req.account, req.n)

    async with client(url) as c, running(svc, url, concurrency=4, suspend_after=0.0):
        a = await c.send(svc.name, "work", {"account": "k", "n": 0})
        await wait_until(lambda: c.state(a.id), what="a registered")
        await wait_until(lambda: _state(c, a.id, "suspended"), what="a suspended")
        b = await c.send(svc.name, "work", {"account": "k", "n": 1})
        await c.result(a.id, timeout=10)
        await c.result(b.id, timeout=10)
    lines = witness.read_text().split("\n")
    b_start, a_end = lines.index("S k 1"), lines.index("E k 0")
    if keeps:
        assert b_start > a_end  # single writer: b waited for a, suspension and all
    else:
        assert b_start < a_end  # a gave its permit back while suspended
    assert replay(witness)[0]["k"] <= 2  # a's replayed start counts twice in the replay


async def _state(c: object, inv: str, state: str) -> bool:
    doc = await c.get(inv)  # type: ignore[attr-defined]
    return doc is not None and doc.state == state
