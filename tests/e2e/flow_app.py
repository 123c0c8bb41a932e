"""A per-key limited handler for the flow tests with real processes (tests/e2e/test_flow_procs.py):
every start and end is appended to a witness file outside Redis (tests/flow_util.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import msgspec

from reliq import App, Context, Service
from tests.flow_util import mark

SERVICE = os.environ.get("RELIQ_E2E_SERVICE", "e2eflow")
WITNESS = Path(os.environ.get("RELIQ_E2E_WITNESS", "/dev/null"))
LIMIT = int(os.environ.get("RELIQ_E2E_LIMIT", "1"))

svc = Service(SERVICE)


class Job(msgspec.Struct):
    account: str
    n: int
    hold: float = 0.002  # seconds; a long hold is taken only by the first delivery (a kill test)


@svc.handler(concurrency_key="account", concurrency_limit=LIMIT)
async def keyed(ctx: Context, job: Job) -> None:
    mark(WITNESS, "S", job.account, job.n)
    held = WITNESS.with_suffix(".held")
    if job.hold > 0.1 and not held.exists():
        held.write_text(str(os.getpid()))
        await asyncio.sleep(job.hold)  # killed here
    await asyncio.sleep(0.002)
    mark(WITNESS, "E", job.account, job.n)


app = App([svc])
