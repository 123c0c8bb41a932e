"""Who holds a per-key permit (review 3, findings 1 and 2), witnessed by a file the handlers
append to: a sync handler whose attempt ends (its timeout, a cancel) while its thread runs on
keeps the permit until the thread returns, so neither its retry nor the next of its key starts
beside it; and an invocation started while its key had no limit (an override of 0, or a
handler with a key and no concurrency limit) is counted by a limit imposed later."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from reliq import Context, Service
from reliq.worker.blocking import SyncContext

from .conftest import Names, client, leaked_keys, read_lines, running, wait_until
from .flow_util import ends, mark, replay


class Acct(msgspec.Struct):
    account: str
    n: int = 0


def _sync(names: Names, witness: Path, **opts: Any) -> Service:
    svc = Service(names())

    @svc.handler(concurrency_key="account", concurrency_limit=1, **opts)
    def work(ctx: SyncContext, req: Acct) -> int:
        mark(witness, "S", req.account, req.n)
        time.sleep(1.0 if req.n == 0 else 0.01)  # n = 0 outlives its timeout, or its cancel
        mark(witness, "E", req.account, req.n)
        return req.n

    return svc


async def test_a_timed_out_sync_holder_keeps_its_permit_until_its_thread_returns(
    url: str, names: Names, tmp_path: Path
) -> None:
    witness = tmp_path / "witness"
    svc = _sync(names, witness, timeout=0.2, max_attempts=2, backoff_base=0.01, backoff_max=0.01)
    async with client(url) as c, running(svc, url, concurrency=8):
        a = await c.send(svc.name, "work", {"account": "k", "n": 0})
        b = await c.send(svc.name, "work", {"account": "k", "n": 1})
        assert await c.result(b.id, timeout=20) == 1
        doc = await c.get(a.id)
        assert doc is not None and doc.state == "failed"  # both attempts timed out: they count
        assert doc.attempt == 2 and doc.error is not None and doc.error.type == "TimeoutError"
        await wait_until(lambda: leaked_keys(url, [svc.name]) == [], what="no permit left")
    most, order = replay(witness)
    assert most == {"k": 1}, read_lines(witness)  # before: 3 (two attempts of n = 0, then n = 1)
    assert order == {"k": [0, 0, 1]}


async def test_a_cancelled_sync_holder_keeps_its_permit_until_its_thread_returns(
    url: str, names: Names, tmp_path: Path
) -> None:
    witness = tmp_path / "witness"
    svc = _sync(names, witness)
    async with client(url) as c, running(svc, url, concurrency=8):
        a = await c.send(svc.name, "work", {"account": "k", "n": 0})
        b = await c.send(svc.name, "work", {"account": "k", "n": 1})
        await wait_until(lambda: replay(witness)[1].get("k") == [0], what="the holder runs")
        assert await c.cancel(a.id) == "cancelling"
        assert await c.result(b.id, timeout=20) == 1
        doc = await c.get(a.id)
        assert doc is not None and doc.state == "cancelled"  # a cancel still wins
    assert replay(witness)[0] == {"k": 1}, read_lines(witness)  # before: 2


async def _blocked(svc: Service, witness: Path, gate: asyncio.Event) -> None:
    @svc.handler(concurrency_key="account", concurrency_limit=1)
    async def work(ctx: Context, req: Acct) -> None:
        mark(witness, "S", req.account, req.n)
        await gate.wait()
        mark(witness, "E", req.account, req.n)


@pytest.mark.parametrize(
    ("lift", "impose"),
    [({"limit": 0}, {"clear": True}), ({"limit": 0}, {"limit": 2}), ({"limit": 0}, {"limit": 1})],
)
async def test_a_limit_imposed_again_counts_what_started_while_it_was_lifted(
    url: str, names: Names, tmp_path: Path, lift: dict[str, Any], impose: dict[str, Any]
) -> None:
    witness, gate = tmp_path / "witness", asyncio.Event()
    svc = Service(names())
    await _blocked(svc, witness, gate)
    async with client(url) as c, running(svc, url, concurrency=10):
        await c.set_flow_override(svc.name, "work", **lift)
        for n in range(3):
            await c.send(svc.name, "work", {"account": "k", "n": n})
        await wait_until(lambda: len(replay(witness)[1].get("k", [])) == 3, what="3 running unlimited")
        await c.set_flow_override(svc.name, "work", **impose)
        late = await c.send(svc.name, "work", {"account": "k", "n": 3})
        assert late.state == "queued"  # 3 hold the key: before, it started at once (4 running)
        gate.set()
        await wait_until(lambda: ends(witness) == 4, what="all 4 done")
        assert await c.result(late.id, timeout=10) is None
        await wait_until(lambda: leaked_keys(url, [svc.name]) == [], what="fl:held and fl:count empty")
    lines = read_lines(witness)
    assert lines.index("S k 3") > max(lines.index(f"E k {n}") for n in range(3)), lines


@pytest.mark.semantics  # also on a Cluster: the flow keys share the service's slot
async def test_a_keyed_handler_without_a_limit_counts_its_holders_for_one_imposed_later(
    url: str, names: Names, tmp_path: Path
) -> None:
    """A handler with a key and only a rate limit (as a deploy that adds a concurrency limit
    finds it): its running invocations hold permits, so a limit set now waits for them."""
    witness, gate = tmp_path / "witness", asyncio.Event()
    svc = Service(names())

    @svc.handler(rate_limit="1000/s", rate_key="account", burst=100)
    async def work(ctx: Context, req: Acct) -> None:
        mark(witness, "S", req.account, req.n)
        await gate.wait()
        mark(witness, "E", req.account, req.n)

    async with client(url) as c, running(svc, url, concurrency=10):
        for n in range(2):
            await c.send(svc.name, "work", {"account": "k", "n": n})
        await wait_until(lambda: len(replay(witness)[1].get("k", [])) == 2, what="2 running")
        await c.set_flow_override(svc.name, "work", limit=2)
        late = await c.send(svc.name, "work", {"account": "k", "n": 2})
        assert late.state == "queued"
        gate.set()
        assert await c.result(late.id, timeout=10) is None
        await wait_until(lambda: leaked_keys(url, [svc.name]) == [], what="fl:held and fl:count empty")
        await c.set_flow_override(svc.name, "work", clear=True)
    assert replay(witness)[0] == {"k": 2}
