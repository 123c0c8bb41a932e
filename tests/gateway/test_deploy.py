"""Dockerfile and compose.yaml (no Docker engine here: check they parse and name what they must),
and the command they run, `reliq gateway`, started for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from gateway.app import OPEN_PATHS
from reliq import App
from reliq.cli.parser import build_parser
from reliq.devserver.embedded import free_port
from reliq.loading import load_app

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
    assert "--app" not in services["gateway"]["command"]  # the gateway runs apart from the workers' code
    assert services["worker"]["command"][:2] == ["reliq", "worker"]
    assert "container_name" not in services["worker"]  # so `--scale worker=3` works
    assert "valkey-data" in doc["volumes"]


def dockerfile() -> list[list[tuple[str, str]]]:
    """The Dockerfile's build stages, each a list of (INSTRUCTION, arguments): comments and blank
    lines dropped, continuation lines joined, as Docker reads them."""
    stages: list[list[tuple[str, str]]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        word, _, args = (pending + line).partition(" ")
        pending = ""
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), args.strip()))
    return stages


def only(stage: list[tuple[str, str]], instruction: str) -> str:
    found = [args for word, args in stage if word == instruction]
    assert len(found) == 1, (instruction, found)
    return found[0]


def image_command() -> list[str]:
    """The final stage's CMD, which must be the exec (JSON array) form: no shell in between,
    so SIGTERM reaches the gateway and it drains."""
    cmd = json.loads(only(dockerfile()[-1], "CMD"))
    assert isinstance(cmd, list) and all(isinstance(part, str) for part in cmd)
    return cmd


def test_dockerfile_is_multi_stage_non_root_and_runs_reliq_gateway() -> None:
    build, final = dockerfile()
    assert only(build, "FROM") == "python:3.11-slim AS build"
    assert only(final, "FROM") == "python:3.11-slim"
    assert "--from=build /wheels /wheels" in [args for word, args in final if word == "COPY"]
    assert only(final, "WORKDIR") == "/app"
    # non-root: the user is created with a fixed uid, and everything after USER runs as it
    words = [word for word, _ in final]
    assert only(final, "USER") == "reliq" and "ENTRYPOINT" not in words
    assert words.index("USER") > max(i for i, w in enumerate(words) if w in ("RUN", "COPY"))
    useradd = next(args for word, args in final if word == "RUN" and "useradd" in args).split()
    assert useradd[-1] == "reliq" and int(useradd[useradd.index("--uid") + 1]) >= 1000
    # the command is one the reliq CLI accepts: a public gateway on the exposed port, without the
    # workers' code (it validates against the registry); the image ships the examples for workers
    a = build_parser().parse_args(image_command()[1:])
    assert image_command()[0] == "reliq" and a.cmd == "gateway"
    assert (a.host, str(a.port)) == ("0.0.0.0", only(final, "EXPOSE"))
    assert a.app is None and "--app" not in image_command()
    copied = [args for word, args in final if word == "COPY"]
    assert "examples ./examples" in copied and isinstance(load_app("examples.shop:app"), App)
    # the health check probes an open path (no token needed) on that port, from inside the container
    check = only(final, "HEALTHCHECK")
    assert "--interval=" in check and "--timeout=" in check
    probe = re.search(r"CMD (.*)$", check)
    assert probe and f"'http://127.0.0.1:{a.port}/healthz'" in probe.group(1) and "/healthz" in OPEN_PATHS


def healthcheck(port: int) -> list[str]:
    """The HEALTHCHECK command (shell form), aimed at ``port``."""
    probe = only(dockerfile()[-1], "HEALTHCHECK").split(" CMD ", 1)[1]
    return ["sh", "-c", probe.replace("python ", f"{sys.executable} ", 1).replace(":8000/", f":{port}/")]


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
    argv = image_command()[1:]  # the image's own command, on a free port and the test's server
    argv[argv.index("--port") + 1] = str(port)
    proc = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "reliq", *argv, "--redis-url", url],
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
        assert subprocess.run(healthcheck(port), check=False).returncode == 0  # noqa: ASYNC221
    finally:
        proc.terminate()
        assert proc.wait(10) == 0  # SIGTERM: drained, then exit status 0
    unhealthy = subprocess.run(healthcheck(port), capture_output=True, check=False)  # noqa: ASYNC221
    assert unhealthy.returncode == 1  # the probe really probes: nothing listens any more
