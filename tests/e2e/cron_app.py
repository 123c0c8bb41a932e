"""Three per-second schedules for the cron crash test, one per catch-up policy, run by real
`reliq worker` subprocesses. Every run is written to a witness file outside Redis: schedule, tick
time, invocation id, pid."""

from __future__ import annotations

import os

from reliq import App, Context, Service

# RELIQ_E2E_PARTITIONS > 1: the ticks are routed to their partitions (two steps, worker/cron.py)
svc = Service(
    os.environ.get("RELIQ_E2E_SERVICE", "e2e"), partitions=int(os.environ.get("RELIQ_E2E_PARTITIONS", "1"))
)
WITNESS = os.environ.get("RELIQ_E2E_WITNESS", "/dev/null")


def witness(ctx: Context, schedule: str) -> None:
    assert ctx.scheduled_for is not None
    line = f"{schedule} {int(ctx.scheduled_for.timestamp() * 1000)} {ctx.id} {os.getpid()}\n"
    with open(WITNESS, "a") as f:  # one short append, the witness of this run
        f.write(line)


@svc.cron("* * * * * *")  # every second (6 fields: seconds first); catch_up="latest"
async def tick(ctx: Context) -> None:
    witness(ctx, "tick")


@svc.cron("* * * * * *", catch_up="all", max_catch_up=3)
async def tick_all(ctx: Context) -> None:
    witness(ctx, "tick_all")


@svc.cron("* * * * * *", catch_up="none")
async def tick_none(ctx: Context) -> None:
    witness(ctx, "tick_none")


app = App([svc])
