"""Reclaim: entries idle past the visibility timeout in any consumer's pending list (its worker
died, froze or lost Redis) are taken over with XAUTOCLAIM and run here. The claim script bumps
the lease epoch, which fences the previous holder out."""

from __future__ import annotations

import logging
import random
import time

from redis.exceptions import ResponseError

from reliq.errors import TRANSIENT
from reliq.store.keys import GROUP, ServiceKeys
from reliq.worker.consume import dispatch, ensure_group
from reliq.worker.execute import Executor
from reliq.worker.runtime import Runtime

log = logging.getLogger("reliq.worker.reclaim")


async def reclaim_once(rt: Runtime, ex: Executor, k: ServiceKeys, cursor: str) -> tuple[str, int]:
    """One XAUTOCLAIM step from ``cursor``; returns the next cursor and how many started.

    The third reply element (entries deleted while pending) is recorded as lost, never fatal.
    """
    count = min(rt.free, rt.config.batch)
    if count <= 0:
        return cursor, 0
    with rt.reserve(count):
        reply = await rt.client.redis.xautoclaim(
            k.stream, GROUP, rt.consumer, rt.config.lease_ms, start_id=cursor, count=count
        )
    next_cursor = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    claimed = reply[1] or []
    deleted = reply[2] if len(reply) > 2 else []
    if deleted:
        ids = [d.decode() if isinstance(d, bytes) else str(d) for d in deleted]
        log.error(
            "%d pending entries of %s were deleted from the stream: recorded as lost", len(ids), k.service
        )
        await rt.client.scripts.record_lost(k, rt.consumer, ids)
    started = await dispatch(rt, ex, k, claimed) if claimed else 0
    if started:
        log.warning("reclaimed %d idle entries of %s", started, k.service)
    return next_cursor, started


async def reap_once(rt: Runtime, k: ServiceKeys) -> list[str]:
    """Delete dead consumers' names from the partition's group (nothing pending, long idle), so
    the group does not grow by one consumer per worker process ever started."""
    reaped = await rt.client.scripts.reap(k, int(rt.config.reap_after * 1000))
    if reaped:
        log.info("removed %d idle consumers without pending entries from %s", len(reaped), k.prefix)
    return reaped


async def reclaim_loop(rt: Runtime, ex: Executor, k: ServiceKeys) -> None:
    cursor = "0-0"  # kept across rounds: each round continues where the last one stopped
    next_reap = time.monotonic() + random.uniform(0, rt.config.reap_every)  # workers spread out
    while not rt.stopping.is_set():
        try:
            if time.monotonic() >= next_reap:
                next_reap = time.monotonic() + rt.config.reap_every
                await reap_once(rt, k)
            cursor, _ = await reclaim_once(rt, ex, k, cursor)
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            await ensure_group(rt, k)
        except TRANSIENT as e:
            log.warning("reclaim on %s failed: %s", k.service, e)
        if cursor == "0-0" or rt.free <= 0:
            await rt.sleep(rt.config.reclaim_every)
