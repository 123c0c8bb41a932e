"""The embedded server's guards, with real processes: one server per data directory (`reliq
redis`, `reliq dev` and `EmbeddedValkey` all lock it for the server's life), and `reliq dev`'s
second Ctrl-C, which kills the workers instead of waiting for their handlers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from reliq.devserver.datalock import DataDirInUse
from reliq.devserver.embedded import EmbeddedValkey, free_port

from .conftest import read_lines, wait_until
from .gateway.test_dev_e2e import _alive, pgrep
from .test_cli_errors import one_line, reliq

ROOT = Path(__file__).resolve().parents[1]


def answers(port: int) -> bool:
    r = redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=1.0)
    try:
        return bool(r.ping())
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
        return False
    finally:
        r.close()


async def test_one_server_per_data_directory(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    first = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "reliq", "redis", "--port", str(port), "--data-dir", str(data)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        await wait_until(lambda: answers(port), what="reliq redis up")
        # `reliq redis` became valkey-server (exec): the server itself holds the lock
        second = await asyncio.to_thread(reliq, "redis", "--port", str(free_port()), "--data-dir", str(data))
        one_line(second, 1, "reliq redis:", f"{data} is in use by another server (pid {first.pid};")
        dev = ("dev", "--port", str(free_port()), "--redis-port", str(free_port()), "--data-dir", str(data))
        one_line(await asyncio.to_thread(reliq, *dev), 1, "reliq dev:", "is in use by another server")
        assert answers(port)  # the first one is untouched
    finally:
        first.terminate()
        await asyncio.to_thread(first.wait, 15)
    with EmbeddedValkey(data_dir=data) as again:  # the lock went with the server
        other = EmbeddedValkey(data_dir=data)
        with pytest.raises(DataDirInUse, match="in use by another server"):
            other.start()
        assert other.proc is None and answers(again.port)
        again.kill()  # a crash test's restart: the same object still holds the lock
        again.start()
        assert answers(again.port)


@pytest.mark.parametrize("draining", ["workers", "gateway"])
async def test_a_second_ctrl_c_stops_reliq_dev_at_once(tmp_path: Path, draining: str) -> None:
    """A handler runs for a minute; the first Ctrl-C starts the graceful stop (the gateway waits
    for an open /call, or the workers for their handler), the second ends it within seconds."""
    service, witness, log_path = f"devstop{uuid.uuid4().hex[:10]}", tmp_path / "witness", tmp_path / "dev.log"
    port, redis_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RELIQ_E2E_SERVICE": service,
        "RELIQ_E2E_WITNESS": str(witness),
    }
    cmd = [sys.executable, "-m", "reliq", "dev", "tests.e2e.app:app", "--port", str(port)]
    cmd += ["--redis-port", str(redis_port), "--data-dir", str(tmp_path / "data")]
    with open(log_path, "wb") as log:  # noqa: ASYNC230
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    children: set[int] = set()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=90) as http:

            async def ready() -> bool:
                assert proc.poll() is None, log_path.read_text()
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout=30, what="reliq dev ready")
            children = pgrep("-P", str(proc.pid))
            if draining == "workers":
                assert (await http.post(f"/send/{service}/slow", json=60)).status_code == 202
            else:
                wait = {"Prefer": "wait=60"}
                call = asyncio.create_task(http.post(f"/call/{service}/slow", json=60, headers=wait))
            await wait_until(lambda: read_lines(witness), what="the handler running")
            proc.send_signal(signal.SIGINT)
            said = "Ctrl-C again" if draining == "workers" else "Waiting for connections to close"
            await wait_until(lambda: said in log_path.read_text(), what="the graceful stop under way")
            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            assert await asyncio.to_thread(proc.wait, 20) == 130, log_path.read_text()
            assert time.monotonic() - t0 < 10  # not the 30 s shutdown grace
            if draining == "gateway":
                with contextlib.suppress(httpx.TransportError):
                    await call  # cut off with the gateway
        said = [line for line in log_path.read_text().splitlines() if "second Ctrl-C" in line]
        assert len(said) == 1 and "killed 1 worker process" in said[0], log_path.read_text()
        assert len(children) == 2 and not [p for p in children if _alive(p)]  # valkey and the worker
        assert not pgrep("-f", f"127.0.0.1:{redis_port}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
