"""A per-second schedule for the cron crash test, run by real `reliq worker` subprocesses. Every
run is written to a witness file outside Redis: tick time, invocation id, pid."""

from __future__ import annotations

import os

from reliq import App, Context, Service

svc = Service(os.environ.get("RELIQ_E2E_SERVICE", "e2e"))
WITNESS = os.environ.get("RELIQ_E2E_WITNESS", "/dev/null")


@svc.cron("* * * * * *")  # every second (6 fields: seconds first)
async def tick(ctx: Context) -> None:
    assert ctx.scheduled_for is not None
    line = f"{int(ctx.scheduled_for.timestamp() * 1000)} {ctx.id} {os.getpid()}\n"
    with open(WITNESS, "a") as f:  # noqa: ASYNC230 - one short append, the witness of this run
        f.write(line)


app = App([svc])
