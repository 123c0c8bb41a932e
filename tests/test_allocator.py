"""The embedded server runs with jemalloc when the machine has it (``reliq.devserver.allocator``):
``EmbeddedValkey`` (``reliq dev``, the tests) and ``reliq redis`` (which becomes the server) start
``valkey-server`` with the library preloaded, ``RELIQ_VALKEY_JEMALLOC=0`` turns it off, and a path
that does not exist is one line and exit 2, with nothing created. Real processes: which allocator
a server runs with is read from its ``/proc/PID/maps``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from reliq.devserver import allocator
from reliq.devserver.embedded import EmbeddedValkey, free_port

from .conftest import wait_until
from .test_cli_errors import one_line, reliq
from .test_devserver import answers

ROOT = Path(__file__).resolve().parents[1]
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and LD_PRELOAD: Linux")


@pytest.fixture
def installed() -> None:
    """jemalloc is installed here (CI installs libjemalloc2: there a missing one fails the test)."""
    if allocator._found() is None:
        if os.environ.get("CI"):
            pytest.fail("no jemalloc library found (apt-get install libjemalloc2)")
        pytest.skip("no jemalloc library on this machine (apt-get install libjemalloc2)")


def mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def works(server: EmbeddedValkey) -> None:
    r = redis.Redis.from_url(server.url)
    try:
        r.hset("h", mapping={str(i): "x" * i for i in range(200)})
        assert r.hlen("h") == 200 and int(r.info("memory")["used_memory"]) > 0
    finally:
        r.close()


@linux
@pytest.mark.usefixtures("installed")
def test_the_embedded_server_runs_with_jemalloc_when_the_machine_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(allocator.SETTING, raising=False)
    with EmbeddedValkey(data_dir=tmp_path / "data") as server:
        assert server.proc is not None
        assert "libjemalloc" in mapped(server.proc.pid)
        works(server)
        server.kill()  # a restart (crash tests) starts it the same way
        server.start()
        assert "libjemalloc" in mapped(server.proc.pid)


@linux
def test_zero_runs_the_server_with_the_malloc_it_was_built_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(allocator.SETTING, "0")
    monkeypatch.setenv("LD_PRELOAD", "")
    with EmbeddedValkey(data_dir=tmp_path / "data") as server:
        assert server.proc is not None
        assert "libjemalloc" not in mapped(server.proc.pid)
        works(server)


@linux
@pytest.mark.usefixtures("installed")
async def test_reliq_redis_becomes_a_server_with_jemalloc(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != allocator.SETTING}
    proc = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "reliq", "redis", "--port", str(port), "--data-dir", str(tmp_path / "d")],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        await wait_until(lambda: answers(port), what="reliq redis up")
        assert "libjemalloc" in mapped(proc.pid)  # the same pid: reliq redis exec'd the server
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 15)


@linux
def test_a_path_that_does_not_exist_is_one_line_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(allocator.SETTING, str(tmp_path / "nope.so"))
    data = tmp_path / "data"
    one_line(reliq("redis", "--port", str(free_port()), "--data-dir", str(data)), 2, "RELIQ_VALKEY_JEMALLOC=")
    dev = ("dev", "--port", str(free_port()), "--redis-port", str(free_port()), "--data-dir", str(data))
    one_line(reliq(*dev), 2, "reliq dev:", "no such file")
    assert not data.exists()
    with pytest.raises(allocator.BadAllocatorSetting):
        EmbeddedValkey(data_dir=data).start()
    assert not data.exists()


def test_a_preload_already_set_is_kept_after_jemalloc(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lib = tmp_path / "libjemalloc.so.2"
    lib.write_bytes(b"")
    monkeypatch.setenv(allocator.SETTING, str(lib))
    monkeypatch.setenv("LD_PRELOAD", "/opt/other.so")
    env = allocator.server_env()
    assert env is not None and env["LD_PRELOAD"] == f"{lib} /opt/other.so"
    assert env["PATH"] == os.environ["PATH"]
    monkeypatch.setenv(allocator.SETTING, "0")
    assert allocator.server_env() is None
