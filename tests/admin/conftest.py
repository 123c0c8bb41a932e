"""Helpers for the admin tests: real `reliq worker` subprocesses (tests/e2e/app.py handlers) with
a short heartbeat, so a SIGKILLed worker shows up dead within a second."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import Names, kill_all, read_lines

ROOT = Path(__file__).resolve().parents[2]


class Workers:
    def __init__(self, url: str, service: str, tmp: Path) -> None:
        self.url, self.service, self.tmp = url, service, tmp
        self.witness = tmp / "witness.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, consumer: str, visibility: float = 30.0) -> subprocess.Popen[bytes]:
        env = {**os.environ, "RELIQ_E2E_SERVICE": self.service, "RELIQ_E2E_WITNESS": str(self.witness)}
        with open(self.tmp / f"{consumer}.log", "ab") as log:
            p = subprocess.Popen(
                [
                    *(sys.executable, "-m", "reliq", "--redis-url", self.url, "--log-level", "WARNING"),
                    *("worker", "tests.e2e.app:app", "--consumer", consumer),
                    *("--visibility-timeout", str(visibility), "--heartbeat-interval", "0.2"),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(p)
        return p

    def events(self, kind: str) -> list[str]:
        return [line.split()[1] for line in read_lines(self.witness) if line.split()[0] == kind]

    def stop_all(self) -> None:
        kill_all(self.procs)


@pytest.fixture
def workers(url: str, names: Names, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(url, names("a"), tmp_path)
    yield w
    w.stop_all()


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    return r.json()
