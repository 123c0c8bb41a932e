"""Property-based run of the gateway's OpenAPI (schemathesis) against a real `reliq gateway`
process: whatever it sends, no 5xx and no status the schema does not document."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, status_code_conformance

from reliq.devserver.embedded import EmbeddedValkey, free_port

from ..conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def test_no_server_errors_and_only_documented_statuses(tmp_path: Path) -> None:
    port = free_port()
    with EmbeddedValkey(data_dir=tmp_path) as server:
        gw = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reliq",
                "--log-level",
                "WARNING",
                "gateway",
                "--redis-url",
                server.url,
                "--port",
                str(port),
                "--app",
                "examples.shop:app",
            ],
            cwd=ROOT,
            env={**os.environ, "RELIQ_MAX_WAIT": "0.2", "RELIQ_DEFAULT_WAIT": "0.2"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            asyncio.run(wait_until(lambda: _ready(port), timeout=20, what="gateway ready"))
            schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json")
            checked = 0
            for result in schema.get_all_operations():
                operation = result.ok()

                @given(case=operation.as_strategy())
                @settings(
                    max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
                )
                def run(case: schemathesis.Case) -> None:
                    case.call_and_validate(
                        checks=[not_a_server_error, status_code_conformance, negative_data_rejection]
                    )

                run()
                checked += 1
            assert checked >= 10
        finally:
            gw.terminate()
            gw.wait(10)
