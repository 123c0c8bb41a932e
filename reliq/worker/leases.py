"""Leases: renew the entries this worker runs well before the visibility timeout (so a handler
running far longer than the timeout is never reclaimed), and act on what renewal finds. A lease
found lost (another worker reclaimed the entry) cancels the local handler: it could not commit
anyway; a durable cancel flag cancels it too (the pub/sub path in ``cancels`` is only lossy)."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from redis.exceptions import ResponseError

from reliq.errors import TRANSIENT
from reliq.worker.cancels import request_cancel
from reliq.worker.inflight import InFlight, Runtime

log = logging.getLogger("reliq.worker.leases")
_RENEW_ERRORS: tuple[type[Exception], ...] = (*TRANSIENT, ResponseError)


async def renew_once(rt: Runtime) -> None:
    by_partition: dict[str, list[InFlight]] = defaultdict(list)  # one call per partition and level
    for f in list(rt.inflight.values()):
        by_partition[f.keys.stream].append(f)
    for flights in by_partition.values():
        k = flights[0].keys
        statuses = await rt.client.scripts.renew(
            k, rt.consumer, rt.config.lease_ms, [(f.id, f.entry, f.epoch) for f in flights]
        )
        for f, status in zip(flights, statuses, strict=True):
            if rt.inflight.get(f.id) is not f:
                continue  # finished while the script ran
            if status == "lost":
                log.warning("lease on %s lost; cancelling the local handler", f.id)
                request_cancel(rt, f.id, lease_lost=True)
            elif status == "cancel" and not f.cancel_requested:
                request_cancel(rt, f.id)


async def renew_loop(rt: Runtime) -> None:
    while True:  # keeps renewing during the shutdown grace period too
        await asyncio.sleep(rt.config.renew_interval)
        try:
            await renew_once(rt)
        except _RENEW_ERRORS as e:
            # NOGROUP (server lost its data) or OOM: keep going; the read loop recreates the group
            log.warning("lease renewal failed: %s", e)
