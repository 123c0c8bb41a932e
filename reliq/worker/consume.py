"""Consume a service's stream: XREADGROUP a batch (own pending entries first), claim the whole
batch in one script call, and start the claimed invocations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from reliq.errors import TRANSIENT
from reliq.store.keys import GROUP, ServiceKeys
from reliq.worker.execute import Claimed, Executor
from reliq.worker.runtime import InFlight, Runtime

log = logging.getLogger("reliq.worker.consume")


async def ensure_group(rt: Runtime, k: ServiceKeys) -> None:
    """Create the consumer group at id 0 with MKSTREAM; an existing group is fine."""
    try:
        await rt.client.redis.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
    except ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def dispatch(
    rt: Runtime, ex: Executor, k: ServiceKeys, entries: Sequence[tuple[Any, dict[Any, Any] | None]]
) -> int:
    """Claim ``entries`` (stream id, fields) and start the runnable ones. Entries whose payload is
    gone (deleted while pending) are acked and logged as lost. Returns how many started."""
    pairs: list[tuple[str, str]] = []
    lost: list[str] = []
    for eid, fields in entries:
        inv = fields.get(b"i") if fields else None
        if inv is None:
            lost.append(_s(eid))
        elif not rt.holds(_s(inv)):  # already running/settling here (own-PEL read racing a reclaim)
            pairs.append((_s(eid), _s(inv)))
    ids = [inv for _, inv in pairs]
    rt.claiming.update(ids)  # before any await: another loop must not claim these meanwhile
    try:
        if lost:
            await rt.client.scripts.record_lost(k, rt.consumer, lost)
            await rt.client.redis.xack(k.stream, GROUP, *lost)
        if not pairs:
            return 0
        out = await rt.client.scripts.claim(k, rt.consumer, rt.config.lease_ms, pairs)
    finally:
        rt.claiming.difference_update(ids)
    started = 0
    for cl in out:
        if cl.status == "skip":
            continue
        if cl.status == "cancel":
            ex.settler.complete(k, cl.id, cl.entry, cl.epoch, "cancelled", b"")
            continue
        c = Claimed(
            id=cl.id,
            entry=cl.entry,
            epoch=cl.epoch,
            handler=cl.handler,
            payload=cl.payload,
            attempt=cl.attempt,
            crashes=cl.crashes,
            parent=cl.parent,
            key=cl.key,
            deliveries=cl.deliveries,
            trace=cl.trace,
        )
        ex.start(InFlight(id=cl.id, keys=k, entry=cl.entry, epoch=cl.epoch), c)
        started += 1
    return started


async def read_loop(rt: Runtime, ex: Executor, k: ServiceKeys) -> None:
    """Read new entries while there are free slots; on start, drain this consumer's own PEL."""
    redis = rt.client.redis
    history: str | None = "0"  # own pending entries first (a restarted worker with a stable name)
    block_ms = int(rt.config.block * 1000)
    pause = 0.05
    while not rt.stopping.is_set():
        await rt.wait_for_slot()
        if rt.stopping.is_set():
            break
        try:
            count = min(rt.free, rt.config.batch)
            if count <= 0:
                continue
            # not reserved: a blocked read would starve reclaim; with several services the
            # limit can be exceeded by at most one batch per extra service (documented)
            if history is not None:
                resp = await redis.xreadgroup(GROUP, rt.consumer, {k.stream: history}, count=count)
            else:
                resp = await redis.xreadgroup(
                    GROUP, rt.consumer, {k.stream: ">"}, count=count, block=block_ms
                )
            entries = resp[0][1] if resp else []
            if history is not None:
                history = _s(entries[-1][0]) if len(entries) == count else None
            if entries:
                await dispatch(rt, ex, k, entries)
            pause = 0.05
        except TRANSIENT as e:
            log.warning("read from %s failed (%s); retrying", k.service, e)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            log.error("consumer group of %s is gone (server data lost?); recreating", k.service)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
            await ensure_group(rt, k)
