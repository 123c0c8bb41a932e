"""Consume a partition's streams (one per priority level): read a batch (own pending entries
first) by the weighted read rule (``reliq.store.priority``: one ``read.lua`` call, or a plain XREADGROUP
of the normal stream while the others are empty), claim each
level's part in one script call, and start the claimed invocations.

Every read asks for no more entries than the limiter slots it holds (see ``limits``), and never
blocks: a caught-up loop gives its slots back and waits for new entries with a plain XREAD from
the group's last-delivered id, so an idle partition holds no capacity a busy one could use."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from reliq.backoff import Backoff
from reliq.codec import text
from reliq.errors import TRANSIENT
from reliq.store.keys import GROUP, LEVELS, ServiceKeys
from reliq.store.priority import quotas
from reliq.worker.decide import Claimed, Complete
from reliq.worker.execute import Executor
from reliq.worker.inflight import InFlight, Runtime

log = logging.getLogger("reliq.worker.consume")
Pending = tuple[Any, dict[Any, Any] | None]  # a delivered entry: (stream id, fields)


async def ensure_group(rt: Runtime, k: ServiceKeys) -> None:
    """Create the consumer group of each level's stream at id 0 with MKSTREAM; an existing
    group is fine (the normal stream's, of a service older than priorities, included)."""
    for stream in k.streams:
        try:
            await rt.client.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise


async def dispatch(rt: Runtime, ex: Executor, k: ServiceKeys, entries: Sequence[Pending]) -> int:
    """Claim ``entries`` (stream id, fields) of the stream ``k.stream`` (``k`` is the partition's
    keys at that entry's priority level) and start the runnable ones, each on one limiter slot
    the caller holds. Entries whose payload is gone (deleted while pending) are acked and
    logged as lost. Returns how many started (= slots used)."""
    pairs: list[tuple[str, str]] = []
    lost: list[str] = []
    for eid, fields in entries:
        inv = fields.get(b"i") if fields else None
        if inv is None:
            lost.append(text(eid))
        elif not rt.holds(text(inv)):  # already running/settling here (own-PEL read racing a reclaim)
            pairs.append((text(eid), text(inv)))
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
    claimed_at = time.monotonic()  # each run's sojourn starts here (the adaptive limit's signal)
    started = 0
    ex.retrace()  # a provider configured meanwhile traces this batch's runs
    for cl in out:
        if cl.status == "skip":
            continue
        flight = InFlight(
            id=cl.id,
            keys=k,
            entry=cl.entry,
            epoch=cl.epoch,
            parent=cl.parent is not None,
            compensating=cl.status == "compensate",
        )
        if cl.status == "cancel":
            await ex.settler.settle(flight, Complete(state="cancelled"))
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
            scheduled_ms=cl.scheduled_ms,
            compensating=cl.status == "compensate",
            priority=k.level,
        )
        ex.start(flight, c, claimed_at)
        started += 1
    return started


class Reader:
    """Where a read loop is: ``history`` the level and id its read of this consumer's own pending
    entries goes on at (None once drained), ``turn`` its place in the read pattern, ``only_normal``
    whether the wait that woke it saw new entries in the normal stream alone."""

    __slots__ = ("history", "only_normal", "turn")

    def __init__(self, own_pending: bool = True) -> None:
        self.history: tuple[int, str] | None = (0, "0") if own_pending else None
        self.turn = 0
        self.only_normal = False


async def read_loop(rt: Runtime, ex: Executor, k: ServiceKeys) -> None:
    """Read new entries while there are free slots; on start, drain this consumer's own PELs."""
    reader = Reader()  # own pending entries first (a restarted worker with a stable name)
    pauses = Backoff(first=0.05, cap=5.0)
    while not rt.stopping.is_set():
        try:
            await read_once(rt, ex, k, reader)
            pauses.reset()
        except TRANSIENT as e:
            log.warning("read from %s failed (%s); retrying", k.service, e)
            await pauses.sleep()
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            log.error("consumer group of %s is gone (server data lost?); recreating", k.service)
            await pauses.sleep()
            await ensure_group(rt, k)


async def read_once(rt: Runtime, ex: Executor, k: ServiceKeys, reader: Reader) -> None:
    """Wait for free slots, read at most that many entries and start them; when there was
    nothing new, wait (holding no slot) for new entries."""
    held = await rt.limiter.acquire(rt.batch)
    if not held:
        return  # stopping
    started, got, history = 0, 0, reader.history
    try:
        if history is not None:
            level, start = history
            resp = await rt.client.redis.xreadgroup(GROUP, rt.consumer, {k.streams[level]: start}, count=held)
            entries = resp[0][1] if resp else []
            got = len(entries)
            if got == held:
                reader.history = (level, text(entries[-1][0]))
            else:
                reader.history = (level + 1, "0") if level + 1 < len(LEVELS) else None
            if entries:
                started = await dispatch(rt, ex, k.at(LEVELS[level]), entries)
        else:
            q, reader.turn = quotas(reader.turn, held)
            only_normal, reader.only_normal = reader.only_normal, False
            for level, batch in await read_new(rt, k, q, only_normal):
                got += len(batch)
                started += await dispatch(rt, ex, k.at(LEVELS[level]), batch)
    finally:
        rt.limiter.release(held - started)
    if rt.adapt is not None:
        rt.adapt.read(held, got)  # a full read: there is a backlog, the limit is used
    if not got and history is None:
        reader.only_normal = await wait_for_new(rt, k)


async def read_new(
    rt: Runtime, k: ServiceKeys, q: list[int], only_normal: bool = False
) -> list[tuple[int, Sequence[Pending]]]:
    """New entries by the weighted read rule, per level (an index of ``LEVELS``). While the high
    and low streams are empty (the common case) the rule gives every slot to normal: one plain
    XREADGROUP does that without the script, whose copy of every entry into Lua and back costs
    Valkey more than the read itself. The lengths are read first, so an entry of another level
    that was there before this read is never passed over (one that comes later is for the next
    read, as with the script). ``only_normal``: the wait that just woke this loop found new
    entries in the normal stream and none in the others (``wait_for_new``), as fresh a fact as
    the lengths would be: they are not read again."""
    redis = rt.client.redis
    others: list[int] = []
    if not only_normal:
        async with redis.pipeline(transaction=False) as p:
            for stream in k.streams[1:]:
                p.xlen(stream)
            others = await p.execute()
    if not any(others):
        resp = await redis.xreadgroup(GROUP, rt.consumer, {k.streams[0]: ">"}, count=sum(q))
        return [(0, resp[0][1])] if resp else []
    out: list[tuple[int, Sequence[Pending]]] = []
    for level, flat in enumerate(await rt.client.scripts.read(k, rt.consumer, q)):
        if flat:
            out.append((level, [(flat[i], {b"i": flat[i + 1]}) for i in range(0, len(flat), 2)]))
    return out


async def wait_for_new(rt: Runtime, k: ServiceKeys) -> bool:
    """Block until a level's stream holds an entry the group has not delivered yet (or ``block``
    passes): XREAD from the groups' last-delivered ids reads without delivering anything.
    Returns whether it woke for new entries of the normal stream alone."""
    redis = rt.client.redis
    last: dict[str, str | bytes] = {}
    try:
        async with redis.pipeline(transaction=False) as p:
            for stream in k.streams:
                p.xinfo_groups(stream)
            replies = await p.execute()
    except ResponseError as e:  # a stream itself is gone (server data lost): as NOGROUP
        raise ResponseError(f"NOGROUP {e}") from e
    for stream, groups in zip(k.streams, replies, strict=True):
        mark = next((g["last-delivered-id"] for g in groups if text(g["name"]) == GROUP), None)
        if mark is None:
            raise ResponseError(f"NOGROUP no consumer group {GROUP} on {stream}")
        last[stream] = mark
    woke = await redis.xread(last, count=1, block=int(rt.config.block * 1000))
    streams = list(woke) if isinstance(woke, dict) else [stream for stream, _ in woke or ()]
    return bool(streams) and all(text(stream) == k.streams[0] for stream in streams)
