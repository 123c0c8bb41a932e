"""The service of bench_priority: a no-op for the backlog, and ``mark``, whose result is how many
milliseconds after it was sent it started (wall clock; sender and worker share the machine)."""

import time

from reliq import Context, Service

prio = Service("prio")


@prio.handler
async def noop(ctx: Context) -> None:
    return None


@prio.handler
async def mark(ctx: Context, sent: float) -> float:
    return (time.time() - sent) * 1000
