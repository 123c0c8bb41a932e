"""Crash tests with real processes: SIGKILL, SIGSTOP/SIGCONT and SIGTERM of `reliq worker`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliq import Client
from reliq.store.keys import ServiceKeys

from ..conftest import Names, read_lines, wait_until

ROOT = Path(__file__).resolve().parents[2]


class Workers:
    def __init__(self, url: str, service: str, tmp: Path) -> None:
        self.url, self.service, self.tmp = url, service, tmp
        self.witness = tmp / "witness.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, consumer: str, visibility: float = 1.0, grace: float = 5.0) -> subprocess.Popen[bytes]:
        env = {**os.environ, "RELIQ_E2E_SERVICE": self.service, "RELIQ_E2E_WITNESS": str(self.witness)}
        log = open(self.tmp / f"{consumer}.log", "ab")  # noqa: SIM115
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reliq",
                "--redis-url",
                self.url,
                "--log-level",
                "WARNING",
                "worker",
                "tests.e2e.app:app",
                "--consumer",
                consumer,
                "--visibility-timeout",
                str(visibility),
                "--shutdown-grace",
                str(grace),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(p)
        return p

    def log(self, consumer: str) -> str:
        path = self.tmp / f"{consumer}.log"
        return path.read_text() if path.exists() else ""

    def events(self, kind: str) -> list[tuple[str, int]]:
        out = []
        for line in read_lines(self.witness):
            event, inv, pid = line.split()
            if event == kind:
                out.append((inv, int(pid)))
        return out

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
            p.wait()


@pytest.fixture
def workers(url: str, names: Names, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(url, names("e"), tmp_path)
    yield w
    w.stop_all()


async def _heartbeat(c: Client, w: Workers, consumer: str) -> None:
    await wait_until(lambda: c.redis.exists(ServiceKeys(w.service).consumer(consumer)), what=f"{consumer} up")


@pytest.mark.semantics  # also on a Cluster (tests/conftest.py)
async def test_sigkill_mid_handler_then_another_worker_completes_exactly_once(
    url: str, workers: Workers
) -> None:
    async with Client(url) as c:
        a = workers.start("a")
        await _heartbeat(c, workers, "a")
        acc = await c.send(workers.service, "slow", 2.0)
        await wait_until(lambda: workers.events("start"), what="handler started in a")
        a.kill()
        a.wait()
        b = workers.start("b")
        assert await c.result(acc.id, 30) == b.pid
        inv = await c.get(acc.id)
        assert inv is not None and inv.state == "succeeded"
        assert inv.crashes == 1 and inv.deliveries == 2 and inv.epoch == 2
    assert [pid for _, pid in workers.events("start")] == [a.pid, b.pid]
    assert [pid for _, pid in workers.events("effect")] == [b.pid]  # the effect ran exactly once


async def test_a_handler_running_3x_the_visibility_timeout_runs_once(url: str, workers: Workers) -> None:
    async with Client(url) as c:
        workers.start("a")
        workers.start("b")
        await _heartbeat(c, workers, "a")
        await _heartbeat(c, workers, "b")
        acc = await c.send(workers.service, "slow", 3.5)  # visibility timeout 1 s
        await c.result(acc.id, 30)
        inv = await c.get(acc.id)
        assert inv is not None and inv.deliveries == 1 and inv.epoch == 1 and inv.crashes == 0
    assert len(workers.events("start")) == 1 and len(workers.events("effect")) == 1


async def test_a_handler_that_kills_its_worker_is_parked_as_crash_loop(url: str, workers: Workers) -> None:
    async with Client(url) as c:
        proc = workers.start("cl")
        acc = await c.send(workers.service, "suicide")

        async def parked_or_restarted() -> bool:
            nonlocal proc
            if await c.state(acc.id) == "failed":
                return True
            if proc.poll() is not None:  # a supervisor restarts the dead worker (same consumer name)
                proc = workers.start("cl")
            return False

        await wait_until(parked_or_restarted, timeout=60, what="crash-loop parking")
        inv = await c.get(acc.id)
        assert inv is not None and inv.reason == "crash-loop" and inv.error is not None
        assert acc.id in await c.parked(workers.service)
    assert len(workers.events("run")) == 2  # max_deliveries=2: ran twice, never a third time


async def test_a_stopped_worker_whose_entry_was_reclaimed_cannot_commit(url: str, workers: Workers) -> None:
    async with Client(url) as c:
        a = workers.start("a")
        await _heartbeat(c, workers, "a")
        acc = await c.send(workers.service, "slow", 2.0)
        await wait_until(lambda: workers.events("start"), what="handler started in a")
        os.kill(a.pid, signal.SIGSTOP)  # a "GC pause" longer than the visibility timeout
        b = workers.start("b")
        assert await c.result(acc.id, 30) == b.pid
        os.kill(a.pid, signal.SIGCONT)
        await wait_until(lambda: "lease" in workers.log("a"), timeout=20, what="a notices its lease is gone")
        inv = await c.get(acc.id)
        assert inv is not None and inv.result == b.pid and inv.steps["pid"] == b.pid and inv.epoch == 2
        assert a.poll() is None  # a is alive, it simply could not commit
    assert [pid for _, pid in workers.events("start")] == [a.pid, b.pid]
    # a resumed past its lease: its sleep was over, but its next step refused to run (the local
    # lease had lapsed), so the step's effect happened once, in b
    assert [pid for _, pid in workers.events("effect")] == [b.pid]


async def test_sigterm_lets_the_running_handler_finish(url: str, workers: Workers) -> None:
    async with Client(url) as c:
        a = workers.start("a", visibility=30.0, grace=20.0)
        await _heartbeat(c, workers, "a")
        acc = await c.send(workers.service, "slow", 1.0)
        await wait_until(lambda: workers.events("start"), what="handler started")
        a.terminate()
        assert a.wait(30) == 0
        assert await c.result(acc.id, 1) == a.pid
