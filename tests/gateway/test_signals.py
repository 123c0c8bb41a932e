"""How `reliq gateway` and `reliq dev` stop: SIGTERM drains what is in flight, then exit 0; `reliq
dev` stops every process it started on SIGTERM and on SIGHUP as on Ctrl-C (checked by pid)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from reliq import Context, Service
from reliq.devserver.embedded import free_port

from ..conftest import Names, client, running, wait_until
from .test_dev_e2e import ROOT, _alive, pgrep, reliq_dev


async def test_gateway_sigterm_finishes_the_request_in_flight_then_exits_0(
    url: str, names: Names, tmp_path: Path
) -> None:
    svc = Service(names())
    release = asyncio.Event()

    @svc.handler
    async def slow(ctx: Context) -> str:
        await release.wait()
        return "done"

    port = free_port()
    log = open(tmp_path / "gw.log", "wb")  # noqa: SIM115, ASYNC230
    proc = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "reliq", "--redis-url", url, "gateway", "--port", str(port)],
        cwd=tmp_path,  # not the checkout: the gateway has no access to the workers' code
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        async with (
            running(svc, url),
            client(url) as c,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
        ):

            async def ready() -> bool:
                assert proc.poll() is None, (tmp_path / "gw.log").read_text()
                try:
                    return (await http.get(f"/send/{svc.name}/slow")).status_code == 405
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout=20, what="gateway up")
            inv = await c.id_for(svc.name, "k1")
            pending = asyncio.create_task(
                http.post(f"/call/{svc.name}/slow", headers={"Idempotency-Key": "k1", "Prefer": "wait=20"})
            )
            await wait_until(lambda: _is(c, inv, "running"), what="the handler running")
            proc.terminate()  # SIGTERM while the /call waits for the handler
            await wait_until(lambda: "Shutting down" in (tmp_path / "gw.log").read_text(), what="shutdown")
            assert proc.poll() is None  # still draining: the request in flight holds it
            release.set()
            r = await pending
            assert r.status_code == 200 and r.json() == "done"
            assert await asyncio.to_thread(proc.wait, 15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def _is(c: object, inv: str, state: str) -> bool:
    return await c.state(inv) == state  # type: ignore[attr-defined, no-any-return]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
async def test_reliq_dev_stops_everything_on_sigterm_and_sighup(tmp_path: Path, sig: signal.Signals) -> None:
    async with reliq_dev(tmp_path) as (proc, http, redis_port):
        children = pgrep("-P", str(proc.pid))
        assert len(children) == 2, children  # valkey-server and one worker
        r = await http.post("/call/orders/place", json={"order_id": "s1", "amount_cents": 1})
        assert r.status_code == 200, r.text
        proc.send_signal(sig)
        assert await asyncio.to_thread(proc.wait, 30) == 0
        assert not {p for p in children if _alive(p)}, [p for p in children if _alive(p)]
        assert not pgrep("-f", f"127.0.0.1:{redis_port}")
