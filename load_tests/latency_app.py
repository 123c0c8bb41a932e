"""Handlers for the latency benchmark (load_tests/bench_latency.py): ``started`` returns the wall
clock at the moment its handler starts (the sender compares it with when it sent), ``noop`` is
the background load and the ``/call`` target."""

import time

from reliq import Context, Service

lat = Service("lat")


@lat.handler
async def started(ctx: Context, sent_at: float) -> float:
    return time.time()


@lat.handler
async def noop(ctx: Context) -> None:
    return None
