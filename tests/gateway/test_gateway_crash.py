"""The gateway dies right after placing a trigger (before answering): the caller's retry with the
same Idempotency-Key gets the same invocation, and the handler runs once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from reliq import Client
from reliq.devserver.embedded import free_port

from ..conftest import Names, running, wait_until
from .test_ingress import shop

ROOT = Path(__file__).resolve().parents[2]


def start_gateway(
    url: str, service: str, port: int, tmp: Path, failpoints: str = ""
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RELIQ_FAILPOINTS": failpoints, "RELIQ_E2E_SERVICE": service}
    log = open(tmp / f"gw-{port}-{failpoints or 'plain'}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "reliq", "gateway", "--redis-url", url, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return proc


async def test_retry_after_a_gateway_crash_converges_on_one_invocation(
    url: str, names: Names, tmp_path: Path
) -> None:
    svc = shop(names())
    port = free_port()
    body = {"order_id": "o9", "amount_cents": 9}
    headers = {"Idempotency-Key": "crash-1"}
    async with Client(url) as c, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        async with running(svc, url):  # publishes the registry the gateway reads
            pass
        doomed = start_gateway(url, svc.name, port, tmp_path, failpoints="after_register:exit")

        async def up() -> bool:
            try:
                return (await http.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(up, what="gateway up")
        try:
            await http.post(f"/send/{svc.name}/place", json=body, headers=headers)
            raise AssertionError("the gateway should have died before answering")
        except httpx.TransportError:
            pass  # the caller saw nothing: outcome unknown
        assert doomed.wait(10) == 137
        assert await c.redis.xlen(c.keys(svc.name).stream) == 1  # placed before the crash

        fresh = start_gateway(url, svc.name, port, tmp_path)
        try:
            await wait_until(up, what="gateway restarted")
            r = await http.post(f"/send/{svc.name}/place", json=body, headers=headers)
            assert r.status_code == 202 and r.json()["status"] == "previously_accepted"
            inv = r.json()["id"]
            async with running(svc, url):
                assert await c.result(inv, 10) == {"order": "o9", "cents": 9}
            doc = await c.get(inv)
            assert doc is not None and doc.deliveries == 1 and doc.attempt == 1
            assert await c.redis.xlen(c.keys(svc.name).stream) == 0
        finally:
            fresh.terminate()
            fresh.wait(10)
