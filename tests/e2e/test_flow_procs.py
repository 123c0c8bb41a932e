"""Per-key concurrency with real worker processes (issue 14): 300 invocations over 10 keys on 3
processes of concurrency 50 (never more than the limit of one key at once, per-key start order =
registration order, all done), and SIGKILL of the process holding a key's permit (the killed one
is retried after its lease runs out, before the next of its key starts; no permit leaks)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliq import Client
from reliq.store.flow import flow_keys
from reliq.store.keys import ServiceKeys

from ..conftest import Names, kill_all, wait_until
from ..flow_util import ends, replay

ROOT = Path(__file__).resolve().parents[2]


class Procs:
    def __init__(self, url: str, service: str, tmp: Path) -> None:
        self.url, self.service, self.witness, self.tmp = url, service, tmp / "witness.log", tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, consumer: str, limit: int = 1, concurrency: int = 50) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "RELIQ_E2E_SERVICE": self.service,
            "RELIQ_E2E_WITNESS": str(self.witness),
            "RELIQ_E2E_LIMIT": str(limit),
        }
        cmd = [sys.executable, "-m", "reliq", "--redis-url", self.url, "--log-level", "WARNING", "worker"]
        cmd += ["tests.e2e.flow_app:app", "--consumer", consumer, "--visibility-timeout", "1.0"]
        cmd += ["--concurrency", str(concurrency)]
        with open(self.tmp / f"{consumer}.log", "ab") as log:
            p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        kill_all(self.procs)


@pytest.fixture
def procs(url: str, names: Names, tmp_path: Path) -> Iterator[Procs]:
    p = Procs(url, names("ef"), tmp_path)
    yield p
    p.stop_all()


async def _published(c: Client, service: str) -> None:
    await wait_until(lambda: c.redis.hget(flow_keys(c.keys(service))[0], "keyed"), what="spec published")


async def _none_held(c: Client, k: ServiceKeys) -> bool:
    return await c.redis.exists(*flow_keys(k)[1:4]) == 0


@pytest.mark.parametrize("limit", [1, 3])
async def test_300_over_10_keys_on_3_processes(url: str, procs: Procs, limit: int) -> None:
    async with Client(url) as c:
        for name in ("a", "b", "c"):
            procs.start(name, limit=limit)
        await _published(c, procs.service)
        for i in range(300):
            await c.send(procs.service, "keyed", {"account": f"k{i % 10}", "n": i})
        await wait_until(lambda: ends(procs.witness) == 300, timeout=60, what="all 300 done")
        k = c.keys(procs.service)
        await wait_until(lambda: _none_held(c, k), what="no permit left")
    most, order = replay(procs.witness)
    assert max(most.values()) <= limit and len(order) == 10
    if limit == 1:
        assert all(started == sorted(started) and len(started) == 30 for started in order.values())


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_sigkill_of_the_permit_holder_retries_it_before_the_next_of_its_key(
    url: str, procs: Procs
) -> None:
    async with Client(url) as c:
        a = procs.start("a", concurrency=4)
        await _published(c, procs.service)
        first = await c.send(procs.service, "keyed", {"account": "k", "n": 0, "hold": 30.0})
        rest = [await c.send(procs.service, "keyed", {"account": "k", "n": n}) for n in (1, 2)]
        other = await c.send(procs.service, "keyed", {"account": "free", "n": 9})
        await wait_until(lambda: procs.witness.with_suffix(".held").exists(), what="the holder runs in a")
        await c.result(other.id, timeout=10)  # another key is not held up
        a.kill()
        a.wait()
        procs.start("b", concurrency=4)
        for x in (first, *rest):
            await c.result(x.id, timeout=30)
        inv = await c.get(first.id)
        assert inv is not None and inv.crashes == 1 and inv.deliveries == 2
        k = c.keys(procs.service)
        await wait_until(lambda: _none_held(c, k), what="no permit left")
    lines = [ln for ln in procs.witness.read_text().splitlines() if " k " in ln]
    # the killed start, its retry, then the rest in order, one at a time
    assert lines == ["S k 0", "S k 0", "E k 0", "S k 1", "E k 1", "S k 2", "E k 2"]
