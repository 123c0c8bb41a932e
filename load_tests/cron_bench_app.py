"""The handler the tick placement benchmark's schedules fire (``load_tests/bench_cron.py``): each
run appends ``<schedule tick ms> <handler start ms> <invocation id>`` to a witness file of its
worker process (outside Redis, so the witness adds no Redis command to the count)."""

from __future__ import annotations

import os
import time

from reliq import App, Context, Service

svc = Service(os.environ.get("RELIQ_BENCH_SERVICE", "crons"))
WITNESS = os.environ.get("RELIQ_BENCH_WITNESS", "/dev/null") + f".{os.getpid()}"


@svc.handler
async def fire(ctx: Context) -> None:
    started = time.time() * 1000
    assert ctx.scheduled_for is not None
    with open(WITNESS, "a") as f:  # noqa: ASYNC230 - one short append per run
        f.write(f"{int(ctx.scheduled_for.timestamp() * 1000)} {started:.1f} {ctx.id}\n")


app = App([svc])
