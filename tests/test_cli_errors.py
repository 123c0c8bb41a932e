"""The errors a newcomer meets first: one clear line on stderr, a non-zero exit, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliq.devserver.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]


def reliq(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "reliq", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def one_line(done: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == status, (done.returncode, done.stderr)
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert all(w in lines[0] for w in words), lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture
def dead_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


def test_a_module_that_does_not_import() -> None:
    one_line(reliq("worker", "nosuch:app"), 2, "nosuch:app", "no module named 'nosuch'")


def test_an_object_that_is_not_an_app() -> None:
    one_line(reliq("worker", "reliq.examples.shop:log"), 2, "is a Logger, not a reliq App")


def test_a_port_in_use(taken_port: int, url: str, tmp_path: Path) -> None:
    gateway = reliq("--redis-url", url, "gateway", "--port", str(taken_port))
    one_line(gateway, 1, f"127.0.0.1:{taken_port}", "in use")
    dev = reliq("dev", "--port", str(taken_port), "--redis-port", str(free_port()))
    one_line(dev, 1, f"gateway port {taken_port}", "in use")
    server = reliq("redis", "--port", str(taken_port), "--data-dir", str(tmp_path / "data"))
    one_line(server, 1, f"reliq redis: cannot listen on 127.0.0.1:{taken_port}", "in use")
    assert not (tmp_path / "data").exists()  # checked before anything was created


def test_redis_unreachable_at_start(dead_url: str) -> None:
    one_line(reliq("--redis-url", dead_url, "send", "orders", "place", "{}"), 1, "reliq send", dead_url)
    one_line(
        reliq("--redis-url", dead_url, "gateway", "--port", str(free_port())), 1, "reliq gateway", dead_url
    )
