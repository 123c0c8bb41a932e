"""GET /metrics: the gateway's own counters (``gateway.metrics``) plus, per known service, its
backlog (in all, and per priority level: ``reliq_service_backlog_priority``), pending, parked,
delayed and suspended counts, its resumptions (a counter) and its waits by cause
(``reliq_waiting``, ``reliq.admin.waits.causes``), summed over partitions (``Client.counts``),
read at scrape time so they are never stale. While Redis does not answer, the scrape still
serves the gateway's own counters, with ``reliq_gateway_redis_up`` 0 and the service gauges as
last read (an outage must not turn off the metrics that show it).

The gauges of this process (group commits, waiters) are set at scrape time too; with several
gateway processes (``gateway.processes``) each also publishes its own every ``PUBLISH_SECONDS``,
so a scrape served by another process sums them at most that stale."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from redis.exceptions import RedisError
from starlette.responses import Response

from reliq.admin import waits

from .state import GatewayState, state_of

log = logging.getLogger("reliq.gateway")
router = APIRouter()
PUBLISH_SECONDS = 1.0


def publish_own(st: GatewayState) -> None:
    """Set the gauges only this process knows."""
    st.metrics.set_batches(st.placer.flushes, st.placer.placed)
    st.metrics.waiters.set(st.waiting.active)


async def publish_loop(st: GatewayState) -> None:
    """With several gateway processes: keep this process' gauges in the shared files fresh."""
    while True:
        await asyncio.sleep(PUBLISH_SECONDS)
        publish_own(st)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    st = state_of(request)
    m = st.metrics
    try:
        await _services(st)
        m.redis_up.set(1)
    except (RedisError, ConnectionError, TimeoutError) as e:
        log.warning("metrics: service gauges not read, redis unavailable: %s", type(e).__name__)
        m.redis_up.set(0)
    publish_own(st)
    return Response(m.render(), media_type="text/plain; version=0.0.4")


async def _services(st: GatewayState) -> None:
    """The per-service gauges, read from Redis now."""
    m = st.metrics
    for service in await st.catalog.services():
        c = await st.client.counts(service)
        m.backlog.labels(service=service).set(c.backlog)
        for level, n in c.levels.items():
            m.backlog_levels.labels(service=service, priority=level).set(n)
        m.pending.labels(service=service).set(c.pending)
        m.parked.labels(service=service).set(c.parked)
        m.delayed.labels(service=service).set(c.delayed)
        m.suspended.labels(service=service).set(c.suspended)
        m.resumed.totals[service] = c.resumed
        for cause, n in (await waits.causes(st.client, service)).items():
            m.waiting.labels(service=service, cause=cause).set(n)
