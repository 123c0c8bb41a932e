"""``reliq worker --processes N`` with real processes: a SIGKILLed child is replaced and its work
reclaimed, signals are forwarded and drained, a crash loop ends the run with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliq import Client
from reliq.cli.main import _worker_config
from reliq.cli.parser import build_parser
from reliq.worker.config import WorkerConfig
from reliq.worker.supervise import child_command, usable_cores

from ..conftest import Names, read_lines, wait_until

ROOT = Path(__file__).resolve().parents[2]


def children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except FileNotFoundError:
        return set()


def two(pid: int) -> set[int] | None:
    """The two children of ``pid``, from one read of them (they change meanwhile), else None."""
    kids = children(pid)
    return kids if len(kids) == 2 else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")


class Supervised:
    def __init__(self, url: str, service: str, tmp: Path) -> None:
        self.url, self.service, self.tmp = url, service, tmp
        self.witness = tmp / "witness.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, app: str = "tests.e2e.app:app", *opts: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "RELIQ_E2E_SERVICE": self.service, "RELIQ_E2E_WITNESS": str(self.witness)}
        cmd = [sys.executable, "-m", "reliq", "--redis-url", self.url, "--log-level", "WARNING"]
        cmd += ["worker", app, "--processes", "2", "--heartbeat-interval", "0.5", *opts]
        with open(self.tmp / "stderr.log", "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=log)
        return self.proc

    def stderr(self) -> str:
        return (self.tmp / "stderr.log").read_text()

    def started(self) -> list[tuple[str, int]]:
        return [
            (inv, int(pid))
            for event, inv, pid in map(str.split, read_lines(self.witness))
            if event == "start"
        ]


@pytest.fixture
def sup(url: str, names: Names, tmp_path: Path) -> Iterator[Supervised]:
    s = Supervised(url, names("sup"), tmp_path)
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.proc.kill()  # its children get SIGTERM (PR_SET_PDEATHSIG)
        s.proc.wait()


async def test_a_sigkilled_child_is_replaced_and_its_work_reclaimed(url: str, sup: Supervised) -> None:
    p = sup.start("tests.e2e.app:app", "--visibility-timeout", "1", "--shutdown-grace", "5")
    first = await wait_until(lambda: two(p.pid), what="two children")
    async with Client(url) as c:
        acc = await c.send(sup.service, "slow", 1.0)
        await wait_until(sup.started, what="the handler started")
        victim = sup.started()[0][1]
        assert victim in first
        os.kill(victim, signal.SIGKILL)

        def replaced() -> set[int] | None:  # one read of the children: they change meanwhile
            kids = children(p.pid)
            return kids if len(kids) == 2 and victim not in kids else None

        now = await wait_until(replaced, what="a replacement child")
        assert len(now - first) == 1  # the survivor kept running, one new process
        survivor_or_new = await c.result(acc.id, 30)
        assert survivor_or_new in now
        inv = await c.get(acc.id)
        assert inv is not None and inv.crashes == 1 and inv.state == "succeeded"
    p.terminate()
    await wait_until(lambda: p.poll() is not None, timeout=30, what="the supervisor exits")
    assert p.returncode == 0
    assert not any(alive(pid) for pid in now)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
async def test_a_signal_drains_every_child_then_the_supervisor_exits_0(
    url: str, sup: Supervised, sig: signal.Signals
) -> None:
    p = sup.start("tests.e2e.app:app", "--shutdown-grace", "20", "--concurrency", "1", "--batch", "1")
    kids = await wait_until(lambda: two(p.pid), what="two children")
    async with Client(url) as c:
        accs = [await c.send(sup.service, "slow", 1.5) for _ in range(3)]
        await wait_until(lambda: len({pid for _, pid in sup.started()}) == 2, what="both children busy")
        p.send_signal(sig)
        await wait_until(lambda: p.poll() is not None, timeout=40, what="the supervisor exits")
        assert p.returncode == 0
        assert not any(alive(pid) for pid in kids)
        started = dict(sup.started())
        for acc in accs:  # what had started finished in the same process: drained, not released
            if acc.id in started:
                assert await c.result(acc.id, 1) == started[acc.id]
            else:  # one at a time per child: the third waits in the stream for the next worker
                assert await c.state(acc.id) == "pending"


async def test_children_that_fail_at_start_end_the_run_with_one_line(sup: Supervised) -> None:
    p = sup.start("tests.worker.child_fails_app:app")
    await wait_until(lambda: p.poll() is not None, timeout=60, what="the supervisor gives up")
    assert p.returncode == 1
    last = sup.stderr().strip().splitlines()[-1]
    assert last.startswith("reliq worker: worker process ") and "3 times in a row" in last


def test_a_bad_app_ends_before_any_child_starts(url: str) -> None:
    cmd = [sys.executable, "-m", "reliq", "--redis-url", url, "worker", "nosuch:app", "--processes", "4"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.decode().strip().splitlines() == ["nosuch:app: no module named 'nosuch'"]


def test_each_child_gets_every_option_and_a_consumer_name_of_its_own() -> None:
    config = WorkerConfig(
        partitions=frozenset({0, 3}),
        concurrency=7,
        batch=9,
        readers=2,
        visibility_timeout=2.5,
        shutdown_grace=3.0,
        heartbeat_interval=0.25,
        consumer="billing",
        retention=60.0,
        suspend_after=0.5,
    )
    names = set()
    for slot in range(3):
        argv = child_command("redis://h:1/0", "m:app", config, slot, ("--log-level", "DEBUG"))
        a = build_parser().parse_args(argv[3:])
        assert a.processes == 1 and a.app == "m:app" and a.redis_url == "redis://h:1/0"
        assert a.log_level == "DEBUG"
        parsed = _worker_config(a)
        assert parsed == WorkerConfig(**{**vars(config), "consumer": f"billing-{slot}"})
        names.add(parsed.consumer)
    assert len(names) == 3


def test_usable_cores_follow_the_cgroup_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    quota = tmp_path / "cpu.max"
    quota.write_text("max 100000\n")
    assert usable_cores(quota) == affinity
    quota.write_text("50000 100000\n")  # half a core: still one process
    assert usable_cores(quota) == 1
    assert usable_cores(tmp_path / "missing") == affinity
