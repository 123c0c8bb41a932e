"""Cron with real processes: three workers race for every tick of a per-second schedule; two are
SIGKILLed midway; then every worker is stopped for several ticks and one restarts. An independent
witness (a file the handler appends to) shows one invocation per tick, no gaps while any worker
lived, and the ``latest`` catch-up policy after the outage."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliq import Client
from reliq.store.keys import ServiceKeys

from ..conftest import Names, read_lines, wait_until

ROOT = Path(__file__).resolve().parents[2]


class Procs:
    def __init__(self, url: str, service: str, tmp: Path) -> None:
        self.url, self.service, self.witness = url, service, tmp / "witness.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, consumer: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "RELIQ_E2E_SERVICE": self.service, "RELIQ_E2E_WITNESS": str(self.witness)}
        cmd = [sys.executable, "-m", "reliq", "--redis-url", self.url, "--log-level", "WARNING", "worker"]
        cmd += ["tests.e2e.cron_app:app", "--consumer", consumer, "--visibility-timeout", "1"]
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def runs(self) -> list[tuple[int, str, int]]:
        return [(int(t), i, int(p)) for t, i, p in (line.split() for line in read_lines(self.witness))]

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()


@pytest.fixture
def procs(url: str, names: Names, tmp_path: Path) -> Iterator[Procs]:
    w = Procs(url, names("cron"), tmp_path)
    yield w
    w.kill_all()


def _one_per_tick(runs: list[tuple[int, str, int]], killed: set[int]) -> list[int]:
    """The ticks run, checked: one invocation id per tick, and a second run of it only when a
    killed worker ran it first (the tick was placed once; its run was redelivered)."""
    by_tick: dict[int, list[tuple[str, int]]] = {}
    for t, inv, pid in runs:
        by_tick.setdefault(t, []).append((inv, pid))
    for t, seen in by_tick.items():
        assert len({inv for inv, _ in seen}) == 1, f"tick {t} placed as {seen}"
        assert len(seen) == 1 or all(pid in killed for _, pid in seen[:-1]), f"tick {t} ran {seen}"
    return sorted(by_tick)


async def test_three_workers_one_run_per_tick_through_kills_and_latest_catch_up(
    url: str, procs: Procs
) -> None:
    k = ServiceKeys(procs.service)
    async with Client(url) as c:
        a, b, w3 = procs.start("a"), procs.start("b"), procs.start("c")
        await wait_until(lambda: len(procs.runs()) >= 5, timeout=30, what="5 ticks")
        a.kill()
        b.kill()
        killed = {a.pid, b.pid}
        seen = len(procs.runs())
        await wait_until(lambda: len(procs.runs()) >= seen + 4, timeout=30, what="4 ticks by the survivor")
        w3.kill()
        w3.wait()
        killed.add(w3.pid)
        ticks = _one_per_tick(procs.runs(), killed)
        assert ticks == list(range(ticks[0], ticks[-1] + 1000, 1000)), "a tick was missed"
        [info] = await c.schedules(procs.service)
        stopped = info.last_tick or 0
        assert stopped >= ticks[-1]
        # every worker down for 6 ticks (server clock), then one restarts: catch_up="latest"
        # places no missed tick but the last, here one within the 2 s grace
        await wait_until(lambda: _passed(c, stopped + 6000), timeout=30, what="6 ticks without workers")
        procs.start("d")
        before = len(procs.runs())
        await wait_until(lambda: len(procs.runs()) >= before + 3, timeout=30, what="ticks after restart")
        after = _one_per_tick(procs.runs(), killed)[len(ticks) :]
        assert after == list(range(after[0], after[-1] + 1000, 1000)), "a gap after the restart"
        assert after[0] >= stopped + 6000 - 2000, f"a missed tick ran: {after[0] - stopped} ms after the stop"
        assert await c.redis.hget(k.ticks, "tick") is not None


async def _passed(c: Client, ms: int) -> bool:
    return await c.server_time_ms() >= ms
