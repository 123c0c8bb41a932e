"""Dockerfile and compose.yaml (no Docker engine here: check they parse and name what they must),
and the command they run, `reliq gateway`, started for real."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from reliq.devserver.embedded import free_port

from ..conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_valkey_with_fsync_always_the_gateway_and_scalable_workers() -> None:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc["services"]
    assert set(services) == {"valkey", "gateway", "worker"}
    valkey = " ".join(services["valkey"]["command"])
    assert "--appendonly yes" in valkey and "--appendfsync always" in valkey and "noeviction" in valkey
    assert services["valkey"]["volumes"] and "healthcheck" in services["valkey"]
    assert services["gateway"]["command"][:2] == ["reliq", "gateway"] and "healthcheck" in services["gateway"]
    assert services["worker"]["command"][:2] == ["reliq", "worker"]
    assert "container_name" not in services["worker"]  # so `--scale worker=3` works
    assert "valkey-data" in doc["volumes"]


def test_dockerfile_is_multi_stage_non_root_and_runs_reliq_gateway() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("FROM python:3.11-slim") == 2
    assert "USER reliq" in text and "useradd" in text
    assert 'CMD ["reliq", "gateway"' in text and "HEALTHCHECK" in text


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp) with a listening socket on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, _, hexport = local.rpartition(":")
                if state == "0A" and int(hexport, 16) == port:
                    found.add(addr)
    return found


@pytest.mark.parametrize("tokens", ["", "t0ken"])
async def test_reliq_gateway_command_serves_http_and_binds_public_only_with_tokens(
    url: str, tmp_path: Path, tokens: str
) -> None:
    port = free_port()
    log = open(tmp_path / "gw.log", "wb")  # noqa: SIM115, ASYNC230
    proc = subprocess.Popen(  # noqa: ASYNC220
        [
            sys.executable,
            "-m",
            "reliq",
            "gateway",
            "--redis-url",
            url,
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--app",
            "examples.shop:app",
        ],
        cwd=ROOT,
        env={**os.environ, "RELIQ_API_TOKENS": tokens},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    try:
        await wait_until(ready, timeout=20, what="gateway ready")
        if tokens:
            assert _listening(port) == {"00000000"}  # 0.0.0.0 as asked
        else:
            assert _listening(port) == {"0100007F"}  # 127.0.0.1: no tokens, no public bind
            assert "binding to 127.0.0.1 only" in (tmp_path / "gw.log").read_text()
    finally:
        proc.terminate()
        assert proc.wait(10) in (0, -15)  # uvicorn exits gracefully, then re-raises SIGTERM
