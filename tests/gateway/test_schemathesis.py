"""Property-based run of the gateway's OpenAPI (schemathesis) against a real `reliq gateway`
process: whatever it sends, no 5xx and no status the schema does not document. Three gateways:
open with ``--app`` (bodies checked against the handlers' types), with API tokens (every request
carries an operator token), and without ``--app`` (handlers learned from the registry of a running
worker process; bodies are then only JSON-checked, so wrong-typed data is accepted and the worker
parks it: the negative-data check does not apply there)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.failures import ServerError
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import negative_data_rejection, status_code_conformance

from reliq.devserver.embedded import EmbeddedValkey, free_port

from ..conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "0per-fuzz-token"
APP = ["--app", "examples.shop:app"]


def _get(port: int, path: str, headers: dict[str, str]) -> bytes | None:
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
        with urllib.request.urlopen(req, timeout=1) as r:
            return bytes(r.read()) if r.status == 200 else None
    except OSError:
        return None


def _reliq(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "reliq", "--log-level", "WARNING", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def not_a_gateway_error(ctx: CheckContext, response: Response, case: schemathesis.Case) -> bool | None:
    """No 5xx, except a handler's own failure that /call relays (``Reliq-Error-Source: handler``,
    e.g. examples.shop's ``always_fails`` run by the worker): that is the handler's answer."""
    source = {k.lower(): v for k, v in response.headers.items()}.get("reliq-error-source", [])
    if response.status_code >= 500 and "handler" not in source:
        raise ServerError(operation=case.operation.label, status_code=response.status_code)
    return None


@contextmanager
def processes(*procs: subprocess.Popen[bytes]) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


@pytest.mark.parametrize("variant", ["open", "tokens", "registry"])
def test_no_server_errors_and_only_documented_statuses(tmp_path: Path, variant: str) -> None:
    port = free_port()
    env = {"RELIQ_MAX_WAIT": "0.2", "RELIQ_DEFAULT_WAIT": "0.2"}
    headers = {}
    if variant == "tokens":
        env["RELIQ_API_TOKENS"] = f"ops:{TOKEN}:operator,viewer:r3ad-fuzz:read"
        headers = {"Authorization": f"Bearer {TOKEN}"}
    checks = [not_a_server_error, status_code_conformance, negative_data_rejection]
    if variant == "registry":  # a worker runs the handlers; bodies are not type-checked
        checks = [not_a_gateway_error, status_code_conformance]
    with EmbeddedValkey(data_dir=tmp_path) as server:
        url = ["--redis-url", server.url]
        registry = variant == "registry"
        procs = [_reliq("gateway", *url, "--port", str(port), *([] if registry else APP), env=env)]
        if registry:
            procs.append(_reliq("worker", *url, "--shutdown-grace", "1", "examples.shop:app", env=env))
        with processes(*procs):

            def learned() -> bool:
                doc = _get(port, "/openapi.json", headers)
                return doc is not None and "/send/orders/place" in json.loads(doc)["paths"]

            asyncio.run(wait_until(learned, timeout=30, what="gateway ready with the shop's handlers"))
            schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json", headers=headers)
            checked = 0
            for result in schema.get_all_operations():
                operation = result.ok()

                @given(case=operation.as_strategy())
                @settings(
                    max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
                )
                def run(case: schemathesis.Case) -> None:
                    case.call_and_validate(headers=headers, checks=checks)

                run()
                checked += 1
            assert checked >= 10
