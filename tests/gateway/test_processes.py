"""``reliq gateway --workers 2`` for real: two uvicorn worker processes on one port, and a /metrics
that adds up what every process served, whichever process answers the scrape."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from reliq.devserver.embedded import free_port

from ..conftest import Names, wait_until

ROOT = Path(__file__).resolve().parents[2]


def children(pid: int) -> set[int]:
    """The gateway's worker processes: its children but multiprocessing's resource tracker (a
    child too, started first: counting it, a check could take it and one worker for both)."""
    try:
        kids = {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except FileNotFoundError:
        return set()
    workers = set()
    for kid in kids:
        try:
            if b"spawn_main" in Path(f"/proc/{kid}/cmdline").read_bytes():
                workers.add(kid)
        except OSError:
            pass
    return workers


def metrics_dir(pid: int) -> Path | None:
    """The PROMETHEUS_MULTIPROC_DIR a worker process of the gateway was started with."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
            return Path(item.split(b"=", 1)[1].decode())
    return None


def value(text: str, pattern: str) -> float:
    m = re.search(rf"^{pattern} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def start_gateway(url: str, port: int, service: str, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "reliq", "--redis-url", url, "--log-level", "WARNING", "gateway"]
    cmd += ["--port", str(port), "--workers", "2", "--app", "tests.e2e.app:app"]
    env = {**os.environ, "RELIQ_E2E_SERVICE": service}
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def test_metrics_add_up_over_the_gateway_processes(url: str, names: Names, tmp_path: Path) -> None:
    port, service = free_port(), names("gw")
    proc = start_gateway(url, port, service, tmp_path / "gateway.log")
    try:
        workers = await wait_until(lambda: len(children(proc.pid)) >= 2 and children(proc.pid), timeout=30)
        directory = await wait_until(lambda: metrics_dir(max(workers)), what="the metrics directory")

        async def listening() -> bool:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.ConnectError:
                    return False

        await wait_until(listening, timeout=30, what="the gateway listens")
        served: set[int] = set()
        sent = 0

        async def one_send(http: httpx.AsyncClient) -> None:
            nonlocal sent
            r = await http.post(f"/send/{service}/slow", json=0.1)  # no worker: it stays queued
            assert r.status_code == 202, r.text
            sent += 1

        async def a_burst_of_new_connections() -> bool:
            # concurrent connections: while one process is busy the other accepts (sequential
            # connections tend to wake the same process every time)
            limits = httpx.Limits(max_keepalive_connections=0)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=10, limits=limits
            ) as http:
                await asyncio.gather(*(one_send(http) for _ in range(10)))
            served.update(int(f.stem.split("_")[1]) for f in directory.glob("counter_*.db"))
            return len(served & workers) == 2

        await wait_until(a_burst_of_new_connections, timeout=60, what="both processes serve a request")
        assert sent >= 2

        async def scraped() -> str | None:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                text = (await http.get("/metrics")).text
            counted = value(text, r'reliq_gateway_requests_total\{route="/send",status="202"\}')
            placed = value(text, "reliq_gateway_placed")  # published by each process within 1 s
            return text if counted == sent and placed == sent else None

        text = await wait_until(scraped, what=f"/metrics to count all {sent} sends")
        assert value(text, r"reliq_gateway_register_seconds_count") == sent
        assert value(text, rf'reliq_service_backlog\{{service="{service}"\}}') == sent
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert not directory.exists()  # the run's metrics directory is removed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_every_process_logs_in_the_format_and_level_asked_for(
    url: str, names: Names, tmp_path: Path
) -> None:
    """``--log-format json`` reached only the parent: the workers' lines (reliq's and uvicorn's)
    were plain text, and their INFO lines were lost (QA, session 15)."""
    port, log = free_port(), tmp_path / "gateway.log"
    cmd = [sys.executable, "-m", "reliq", "--redis-url", url, "--log-format", "json", "gateway"]
    proc = spawn([*cmd, "--port", str(port), "--workers", "2"], log)
    try:

        def lines() -> list[str]:
            return [line for line in log.read_text().splitlines() if line.strip()]

        def both_started() -> bool:
            return (
                sum("Started server process" in line for line in lines()) == 2
                and sum("gateway durability" in line for line in lines()) == 2
            )

        await wait_until(both_started, timeout=30, what="two workers started, each saying so at INFO")
        docs = [json.loads(line) for line in lines()]  # every line one JSON object
        assert {d["logger"] for d in docs} >= {"uvicorn.error", "reliq.gateway"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
