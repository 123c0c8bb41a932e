"""Cron with real processes: three workers race for every tick of per-second schedules; two are
SIGKILLed midway; then every worker is stopped for 10 ticks and one restarts. An independent
witness (a file the handler appends to) shows one invocation per tick, no gaps while any worker
lived, and each catch-up policy (latest, all, none) obeyed exactly after the outage. Once on a
service of one partition (one script per round), once on three (ticks placed in their
partitions, then the cursor moved: a kill between the two steps must not place a tick twice)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliq import Client
from reliq.store import cron
from reliq.store.keys import ServiceKeys, locate

from ..conftest import Names, kill_all, read_lines, wait_until

ROOT = Path(__file__).resolve().parents[2]


SCHEDULES = ("tick", "tick_all", "tick_none")  # catch_up latest, all (max 3), none: tests/e2e/cron_app.py
Run = tuple[int, str, int]  # tick ms, invocation id, pid


class Procs:
    def __init__(self, url: str, service: str, tmp: Path, partitions: int) -> None:
        self.url, self.service, self.witness = url, service, tmp / "witness.log"
        self.partitions = partitions
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, consumer: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "RELIQ_E2E_SERVICE": self.service, "RELIQ_E2E_WITNESS": str(self.witness)}
        env["RELIQ_E2E_PARTITIONS"] = str(self.partitions)
        cmd = [sys.executable, "-m", "reliq", "--redis-url", self.url, "--log-level", "WARNING", "worker"]
        cmd += ["tests.e2e.cron_app:app", "--consumer", consumer, "--visibility-timeout", "1"]
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def runs(self, schedule: str = "tick") -> list[Run]:
        lines = (line.split() for line in read_lines(self.witness))
        return [(int(t), i, int(p)) for s, t, i, p in lines if s == schedule]

    def kill_all(self) -> None:
        kill_all(self.procs)


@pytest.fixture(params=[1, 3], ids=["one-partition", "three-partitions"])
def procs(url: str, names: Names, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Procs]:
    w = Procs(url, names("cron"), tmp_path, request.param)
    yield w
    w.kill_all()


def _one_per_tick(runs: list[Run], killed: set[int]) -> list[int]:
    """The ticks run, checked: one invocation id per tick, and a second run of it only when a
    killed worker ran it first (the tick was placed once; its run was redelivered)."""
    by_tick: dict[int, list[tuple[str, int]]] = {}
    for t, inv, pid in runs:
        by_tick.setdefault(t, []).append((inv, pid))
    for t, seen in by_tick.items():
        assert len({inv for inv, _ in seen}) == 1, f"tick {t} placed as {seen}"
        assert len(seen) == 1 or all(pid in killed for _, pid in seen[:-1]), f"tick {t} ran {seen}"
    return sorted(by_tick)


async def test_three_workers_one_run_per_tick_through_kills_and_each_catch_up_policy(
    url: str, procs: Procs
) -> None:
    """20 s of a per-second schedule (x3, one per policy): 3 workers for 10 ticks, SIGKILL two,
    10 more ticks by the survivor; every worker down for 10 ticks; one restarts, and each schedule's
    first round places exactly what its policy says for the time it was placed."""
    k = ServiceKeys(procs.service)
    async with Client(url) as c:
        a, b, w3 = procs.start("a"), procs.start("b"), procs.start("c")
        await wait_until(lambda: len(procs.runs()) >= 10, timeout=40, what="10 ticks")
        a.kill()
        b.kill()
        killed = {a.pid, b.pid}
        seen = len(procs.runs())
        await wait_until(lambda: len(procs.runs()) >= seen + 10, timeout=40, what="10 ticks by the survivor")
        w3.kill()
        w3.wait()
        killed.add(w3.pid)
        before: dict[str, list[int]] = {}
        for name in SCHEDULES:
            ticks = before[name] = _one_per_tick(procs.runs(name), killed)
            assert ticks == list(range(ticks[0], ticks[-1] + 1000, 1000)), f"{name}: a tick was missed"
            assert len(ticks) >= 19, name
        parts = {locate(inv)[1] for _, inv, _ in procs.runs()}
        assert len(parts) == min(procs.partitions, 3), parts  # ~20 ticks: each partition gets some
        infos = {i.schedule.name: i for i in await c.schedules(procs.service)}
        stopped = {name: infos[name].last_tick or 0 for name in SCHEDULES}
        assert all(stopped[n] >= before[n][-1] for n in SCHEDULES)
        # every worker down for 10 ticks (server clock), then one restarts
        await wait_until(lambda: _passed(c, max(stopped.values()) + 10_000), timeout=30, what="10 ticks down")
        procs.start("d")
        n0 = {name: len(procs.runs(name)) for name in SCHEDULES}
        await wait_until(
            lambda: all(len(procs.runs(n)) >= n0[n] + 3 for n in SCHEDULES), timeout=30, what="runs"
        )
        for name in SCHEDULES:
            # ticks placed before the stop whose run came after the restart (the last worker was
            # killed between placing and running them) are the stopped schedule's, not the new round's
            after = [t for t in _one_per_tick(procs.runs(name), killed) if t > stopped[name]]
            spec = infos[name].schedule
            # the first round after the restart: the ticks due when it placed its first (its
            # script call, or on three partitions its first of one call per partition); not "the
            # first run seen": the read loops may run a later round's tick before an earlier one's
            ids = {t: inv for t, inv, _ in procs.runs(name)}
            created = {t: await _created(c, ids[t]) for t in after}
            placed_at = min(created.values())
            first = [t for t in after if t <= placed_at]
            # exactly the policy's choice for the time of that round: the worker planned at its
            # estimate of the server clock, before the placing call's own time (by a few ms, or on
            # three partitions by the routing reads and register calls in between: up to 0.5 s
            # on a loaded machine)
            allowed = [
                cron.plan(spec, stopped[name], placed_at - d, GRACE_MS).ticks for d in range(0, 501, 25)
            ]
            # the last tick due before placed_at may be the next round's, when the first round
            # placed its ticks late (a loaded machine): then a later call created it
            if first not in allowed and len(first) > 1 and created[first[-1]] > placed_at:
                first = first[:-1]
            assert first in allowed, (name, first, allowed, placed_at)
            # missed (past the grace) as of a planning time that gives this round: counted from
            # placed_at itself, a round planned in time but placed late looked like a catch-up
            planned = [
                placed_at - d for d, ticks in zip(range(0, 501, 25), allowed, strict=True) if ticks == first
            ]
            missed = {len([t for t in first if at - t > GRACE_MS]) for at in planned}
            assert {"tick": 0, "tick_all": 3, "tick_none": 0}[name] in missed, (name, first, placed_at)
            assert after == list(range(after[0], after[-1] + 1000, 1000)), f"{name}: a gap after the restart"
        assert await c.redis.hget(k.ticks, "tick") is not None


GRACE_MS = 2000  # WorkerConfig.cron_grace


async def _created(c: Client, inv: str) -> int:
    doc = await c.get(inv)
    assert doc is not None and doc.created is not None
    return doc.created


async def _passed(c: Client, ms: int) -> bool:
    return await c.server_time_ms() >= ms
