"""Reclaim: entries idle past the visibility timeout in any consumer's pending list (its worker
died, froze or lost Redis) are taken over with XAUTOCLAIM and run here. The claim script bumps
the lease epoch, which fences the previous holder out. XAUTOCLAIM's ``COUNT`` is the number of
limiter slots free right now (reclaim never waits for one: it comes back next round). Each
priority level's stream is scanned in turn, high first, each with its own cursor."""

from __future__ import annotations

import logging

from redis.exceptions import ResponseError

from reliq.codec import text
from reliq.errors import TRANSIENT
from reliq.store.keys import GROUP, ServiceKeys
from reliq.worker.consume import dispatch, ensure_group
from reliq.worker.execute import Executor
from reliq.worker.inflight import Runtime

log = logging.getLogger("reliq.worker.reclaim")


async def reclaim_once(rt: Runtime, ex: Executor, k: ServiceKeys, cursor: str) -> tuple[str, int]:
    """One XAUTOCLAIM step from ``cursor``; returns the next cursor and how many started.

    The third reply element (entries deleted while pending) is recorded as lost, never fatal.
    """
    held = rt.limiter.try_acquire(rt.batch)
    if not held:
        return cursor, 0
    started = 0
    try:
        reply = await rt.client.redis.xautoclaim(
            k.stream, GROUP, rt.consumer, rt.config.lease_ms, start_id=cursor, count=held
        )
        claimed = reply[1] or []
        deleted = reply[2] if len(reply) > 2 else []
        if deleted:
            ids = [text(d) for d in deleted]
            log.error(
                "%d pending entries of %s were deleted from the stream: recorded as lost", len(ids), k.service
            )
            await rt.client.scripts.record_lost(k, rt.consumer, ids)
        started = await dispatch(rt, ex, k, claimed) if claimed else 0
    finally:
        rt.limiter.release(held - started)
    if started:
        log.warning("reclaimed %d idle entries of %s", started, k.service)
    return text(reply[0]), started


async def reclaim_loop(rt: Runtime, ex: Executor, k: ServiceKeys) -> None:
    levels = [k.at(level) for level in ("high", "normal", "low")]
    # per level, kept across rounds: each round continues where the last one stopped
    cursors = {lk.stream: "0-0" for lk in levels}
    while not rt.stopping.is_set():
        before = dict(cursors)
        for lk in levels:
            try:
                cursors[lk.stream], _ = await reclaim_once(rt, ex, lk, cursors[lk.stream])
            except ResponseError as e:
                if "NOGROUP" not in str(e):
                    raise
                await ensure_group(rt, k)
            except TRANSIENT as e:
                log.warning("reclaim on %s failed: %s", k.service, e)
        # Continue at once only when this round took slots and left a scan unfinished. A round
        # that took none sleeps too: a slot can be free while a read still queues for it (woken,
        # not yet run; try_acquire never jumps that queue), and a round without an await would
        # never let that read run: the worker would spin here for ever.
        if cursors == before or all(c == "0-0" for c in cursors.values()) or rt.limiter.free <= 0:
            await rt.sleep(rt.config.reclaim_every)
