"""Reply-to through a real SIGKILL: a worker process kills itself (failpoint ``after_complete`` /
``after_park``, ``reliq/worker/failpoints.py``) right after the script that wrote the outcome
returned, before any relay. The outcome and its reply message were one write, so another worker
process delivers the reply, once, with the outcome; the source is not run again."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliq import Client
from reliq.store.keys import reply_token

from ..conftest import Names, kill_all, read_lines, wait_until

ROOT = Path(__file__).resolve().parents[2]


class Procs:
    def __init__(self, url: str, base: str, tmp: Path) -> None:
        self.url, self.base, self.tmp, self.witness = url, base, tmp, tmp / "witness.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, app: str, consumer: str, failpoints: str = "") -> subprocess.Popen[bytes]:
        env = {**os.environ, "RELIQ_E2E_SERVICE": self.base, "RELIQ_E2E_WITNESS": str(self.witness)}
        env["RELIQ_FAILPOINTS"] = failpoints
        cmd = [sys.executable, "-m", "reliq", "--redis-url", self.url, "--log-level", "WARNING", "worker"]
        cmd += [f"tests.e2e.reply_app:{app}", "--consumer", consumer]
        log = open(self.tmp / f"{consumer}.log", "ab")  # noqa: SIM115
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(p)
        return p

    def lines(self, kind: str) -> list[list[str]]:
        return [line.split()[1:] for line in read_lines(self.witness) if line.startswith(kind + " ")]

    def kill_all(self) -> None:
        kill_all(self.procs)


@pytest.fixture
def procs(url: str, names: Names, tmp_path: Path) -> Iterator[Procs]:
    base = names("r")
    names.used += [base + "-pay", base + "-bill"]
    w = Procs(url, base, tmp_path)
    yield w
    w.kill_all()


async def test_the_reply_is_delivered_once_after_a_sigkill_between_outcome_and_relay(
    url: str, procs: Procs
) -> None:
    pay, bill = procs.base + "-pay", procs.base + "-bill"
    async with Client(url) as c:
        outbox = c.keys(pay).outbox
        sources = {}
        for cents, point, state in ((5, "after_complete", "succeeded"), (-1, "after_park", "failed")):
            acc = await c.send(pay, "charge", cents, reply_to=(bill, "on_charged"))
            doomed = procs.start("source", f"doomed-{cents}", failpoints=point)
            await wait_until(
                lambda d=doomed: d.poll() is not None, timeout=60, what="the worker killed itself"
            )
            assert doomed.returncode == -9  # SIGKILL, at the failpoint
            assert await c.state(acc.id) == state  # the outcome was written...
            reply_id = await c.route(bill, reply_token(bill, acc.id))
            assert await c.get(reply_id) is None  # ...the reply not relayed: it waits in the outbox
            assert await c.redis.xlen(outbox) == len(sources) + 1
            sources[acc.id] = (state, reply_id)
        assert procs.lines("reply") == []
        procs.start("both", "survivor")  # its relay sweeps the outbox of the paying service
        await wait_until(lambda: len(procs.lines("reply")) >= 2, timeout=60, what="two replies")
        for _state, reply_id in sources.values():
            await wait_until(lambda r=reply_id: _succeeded(c, r), what="the reply invocation settled")
        await wait_until(lambda: _empty(c, outbox), what="the outbox applied")
        replies = procs.lines("reply")
        assert sorted((src, st) for src, st, _ in replies) == sorted(
            (s, st) for s, (st, _) in sources.items()
        )
        assert sorted(src for src, _ in procs.lines("charge")) == sorted(sources)  # each ran once
        assert {pid for _, _, pid in replies} == {str(procs.procs[-1].pid)}


async def _succeeded(c: Client, inv: str) -> bool:
    return await c.state(inv) == "succeeded"


async def _empty(c: Client, key: str) -> bool:
    return await c.redis.xlen(key) == 0
