"""Leases: renew the entries this worker runs well before the visibility timeout (so a handler
running far longer than the timeout is never reclaimed), and act on what renewal finds. A lease
found lost (another worker reclaimed the entry) cancels the local handler: it could not commit
anyway; a durable cancel flag cancels it too (the pub/sub path in ``cancels`` is only lossy).

Each in-flight entry also keeps a local deadline (``InFlight.lease_until``: the send time of its
last successful claim or renewal plus the lease, by ``time.monotonic()``; the server's lease runs
from later). Past it the worker cannot know it still holds the entry (renewals failed: Redis
unreachable, the process paused, the loop blocked): a loop beside the renewals wakes at that
deadline and cancels the handler (``lapse``), and ``ctx.step`` refuses to start a step body past it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from redis.exceptions import ResponseError

from reliq.errors import TRANSIENT
from reliq.worker.cancels import request_cancel
from reliq.worker.inflight import InFlight, Runtime

log = logging.getLogger("reliq.worker.leases")
_RENEW_ERRORS: tuple[type[Exception], ...] = (*TRANSIENT, ResponseError)
MIN_WAKE = 0.01  # seconds: the renew loop never spins faster than this


async def renew_once(rt: Runtime) -> None:
    by_partition: dict[str, list[InFlight]] = defaultdict(list)  # one call per partition and level
    for f in list(rt.inflight.values()):
        by_partition[f.keys.stream].append(f)
    lease = rt.config.lease_ms / 1000
    for flights in by_partition.values():
        k = flights[0].keys
        sent = time.monotonic()
        statuses = await rt.client.scripts.renew(
            k, rt.consumer, rt.config.lease_ms, [(f.id, f.entry, f.epoch) for f in flights]
        )
        for f, status in zip(flights, statuses, strict=True):
            if rt.inflight.get(f.id) is not f:
                continue  # finished while the script ran
            if status == "lost":
                log.warning("lease on %s lost; cancelling the local handler", f.id)
                request_cancel(rt, f.id, lease_lost=True)
                continue
            f.lease_until = max(f.lease_until, sent + lease)  # 'ok' or 'cancel': renewed
            if status == "cancel" and not f.cancel_requested:
                request_cancel(rt, f.id)


def lapse(rt: Runtime, now: float) -> float:
    """Cancel the handlers whose local lease deadline has passed; the seconds until the next
    deadline of those still running (``inf`` when none)."""
    nearest = float("inf")
    for f in list(rt.inflight.values()):
        if f.lease_lost or f.settling:
            continue  # cancelled already, or writing an outcome the fenced script checks itself
        if f.lease_until <= now:
            log.warning("lease on %s lapsed (not renewed in time); cancelling the local handler", f.id)
            request_cancel(rt, f.id, lease_lost=True)
        else:
            nearest = min(nearest, f.lease_until - now)
    return nearest


async def renew_loop(rt: Runtime) -> None:
    """Renew every ``renew_interval``; beside it, cancel at each local deadline. The two are
    apart so that a renewal hanging on an unreachable server (until its socket times out) does
    not hold back the cancel."""
    watch = asyncio.create_task(_lapse_loop(rt), name="reliq:lapse")
    try:
        while True:  # keeps renewing during the shutdown grace period too
            await asyncio.sleep(rt.config.renew_interval)
            if watch.done():
                watch.result()  # it raised: as for any of the worker's loops, the worker stops
            try:
                await renew_once(rt)
            except _RENEW_ERRORS as e:
                # NOGROUP (server lost its data) or OOM: keep going; the read loop recreates the group
                log.warning("lease renewal failed: %s", e)
    finally:
        watch.cancel()


async def _lapse_loop(rt: Runtime) -> None:
    """Wake at the nearest local deadline, at the latest every ``renew_interval`` (an entry
    claimed meanwhile has a whole lease ahead of it, so none is missed)."""
    while True:
        nearest = lapse(rt, time.monotonic())
        await asyncio.sleep(max(MIN_WAKE, min(rt.config.renew_interval, nearest)))
