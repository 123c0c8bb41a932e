"""`reliq dev examples.shop:app` for real: embedded Valkey + a worker process + the gateway, driven
over HTTP the way the README does it, then stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from reliq.devserver.embedded import free_port

from ..conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]


def pgrep(*args: str) -> set[int]:
    """Live pids matching ``pgrep ARGS`` (zombies excluded: they are already dead)."""
    out = subprocess.run(["pgrep", *args], capture_output=True, text=True, check=False).stdout
    pids = {int(p) for p in out.split()}
    return {p for p in pids if _alive(p)}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@asynccontextmanager
async def reliq_dev(tmp_path: Path) -> AsyncIterator[tuple[subprocess.Popen[bytes], httpx.AsyncClient, int]]:
    port, redis_port = free_port(), free_port()
    log = open(tmp_path / "dev.log", "wb")  # noqa: SIM115, ASYNC230
    cmd = [sys.executable, "-m", "reliq", "dev", "examples.shop:app", "--port", str(port)]
    cmd += ["--redis-port", str(redis_port), "--data-dir", str(tmp_path / "data"), "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    log.close()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=40) as http:

            async def ready() -> bool:
                assert proc.poll() is None, (tmp_path / "dev.log").read_text()
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout=20, what="reliq dev ready")
            yield proc, http, redis_port
    finally:
        if proc.poll() is None:  # the test failed before its own Ctrl-C: clean up what we started
            children = pgrep("-P", str(proc.pid))
            proc.kill()
            proc.wait()
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


async def test_make_dev_runs_the_shop_examples_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    async with reliq_dev(tmp_path) as (proc, http, redis_port):
        children = pgrep("-P", str(proc.pid))
        names = " | ".join(_cmdline(p) for p in children)
        assert "valkey-server" in names and " worker examples.shop:app" in names, names

        # the README's request: memoized charge, child call to shipping, fire-and-forget email
        r = await http.post(
            "/call/orders/place",
            json={"order_id": "o1", "amount_cents": 500},
            headers={"Idempotency-Key": "order-1"},
        )
        assert r.status_code == 200, r.text
        assert r.content == b'{"receipt":"rcpt-o1-500","label":"label-o1"}'
        doc = (await http.get(f"/invocations/{r.headers['reliq-invocation-id']}")).json()
        assert f"/invocations/{doc['id']}" in (ROOT / "README.md").read_text()  # keyed id, as shown there
        assert doc["steps"] == {"charge": "rcpt-o1-500"}
        assert [c.split(".")[0] for c in doc["children"]] == ["shipping", "notifications"]

        async def email_sent() -> bool:
            child = (await http.get(f"/invocations/{doc['children'][1]}")).json()
            return bool(child["state"] == "succeeded")

        await wait_until(email_sent, timeout=10, what="notifications.email succeeded")

        # fails twice, succeeds on the 3rd attempt, within one /call
        r = await http.post("/call/orders/flaky", headers={"Prefer": "wait=30"})
        assert r.status_code == 200, r.text
        assert r.json() == {"attempts": 3}

        # raises every time: parked after max_attempts=2
        r = await http.post("/send/orders/always_fails")
        assert r.status_code == 202, r.text
        inv = r.json()["id"]
        failed: dict[str, Any] = {}

        async def parked() -> bool:
            failed.update((await http.get(f"/invocations/{inv}")).json())
            return bool(failed["state"] == "failed")

        await wait_until(parked, timeout=15, what="always_fails parked")
        assert failed["reason"] == "attempts-exhausted" and failed["attempt"] == 2
        assert failed["error"]["type"] == "RuntimeError"

        # a body that does not match the handler's type: 422, nothing placed
        r = await http.post("/send/orders/place", json={"order_id": 1})
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert "$.order_id" in r.json()["detail"]

        # Ctrl-C: the gateway, the worker and valkey-server all stop
        assert pgrep("-f", f"127.0.0.1:{redis_port}") >= children
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        await asyncio.to_thread(proc.wait, 30)  # TimeoutExpired fails the test
        assert time.monotonic() - t0 < 30
        assert not {p for p in children if _alive(p)}
        assert not pgrep("-f", f"127.0.0.1:{redis_port}")
