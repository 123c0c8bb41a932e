"""Real `reliq worker` subprocesses running ``tests.trees.crash_app``, killed with SIGKILL, and
the witness file their handlers' steps append to."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from ..conftest import kill_all, read_lines

ROOT = Path(__file__).resolve().parents[2]


class Workers:
    """Worker processes for one test: ``parent`` and ``child`` are its service names."""

    def __init__(self, url: str, parent: str, child: str, tmp: Path) -> None:
        self.url, self.parent, self.child, self.tmp = url, parent, child, tmp
        self.witness = tmp / "witness.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, app: str = "app", hold: float = 0.0) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "RELIQ_TREES_PARENT": self.parent,
            "RELIQ_TREES_CHILD": self.child,
            "RELIQ_TREES_WITNESS": str(self.witness),
            "RELIQ_TREES_HOLD": str(hold),
        }
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child process
        args = ["--redis-url", self.url, "--log-level", "WARNING", "worker", f"tests.trees.crash_app:{app}"]
        args += ["--consumer", name, "--visibility-timeout", "1.0", "--shutdown-grace", "5"]
        p = subprocess.Popen(
            [sys.executable, "-m", "reliq", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.procs.append(p)
        return p

    def kill(self, p: subprocess.Popen[bytes]) -> None:
        p.kill()  # SIGKILL
        p.wait()

    def effects(self, event: str) -> Counter[str]:
        """How often ``event`` ran, per invocation id."""
        return Counter(line.split()[1] for line in read_lines(self.witness) if line.split()[0] == event)

    def pids(self, event: str) -> set[int]:
        return {int(line.split()[2]) for line in read_lines(self.witness) if line.split()[0] == event}

    def stop_all(self) -> None:
        kill_all(self.procs)
