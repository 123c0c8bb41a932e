"""Consume a partition's streams (one per priority level): read a batch (own pending entries
first) by the weighted read rule (``reliq.store.priority``: one ``read.lua`` call, or a plain XREADGROUP
of the normal stream while the others are empty), claim each
level's part in one script call, and start the claimed invocations.

Every read asks for no more entries than the limiter slots it holds (see ``limits``), and never
blocks: a caught-up loop gives its slots back and waits for new entries with a plain XREAD from
the group's last-delivered id, so an idle partition holds no capacity a busy one could use. The
entries that wait finds in the normal stream alone are delivered and claimed by one take.lua
call; so are the next ones while the leading loop keeps up (it waits again at once: an XREAD
that finds entries returns them without blocking). Under ``/call`` traffic this was 1.11-1.23x the
requests per second of an XREADGROUP and a claim (docs/performance.md).

A partition with traffic is read by ``readers`` loops at once (``WorkerConfig.readers``): while
one waits for its claim (a round trip and, on an ``appendfsync always`` server, an fsync), the
next reads. One loop of a partition leads: it drains the consumer's own pending entries on
start and waits in Redis when caught up; the others follow it, reading only while reads come
back full (``Traffic``), so an idle partition still holds one blocked connection, not
``readers``, and one with a trickle of work is read by one loop, as before."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from redis.exceptions import ResponseError

from reliq.backoff import Backoff
from reliq.codec import text
from reliq.errors import TRANSIENT
from reliq.store.keys import GROUP, LEVELS, ServiceKeys
from reliq.store.priority import quotas
from reliq.worker.decide import Claimed, Complete
from reliq.worker.execute import Executor
from reliq.worker.fetch import Marks, Pending, read_new, wait_for_new
from reliq.worker.inflight import InFlight, Runtime

log = logging.getLogger("reliq.worker.consume")


async def ensure_group(rt: Runtime, k: ServiceKeys) -> None:
    """Create the consumer group of each level's stream at id 0 with MKSTREAM; an existing
    group is fine (the normal stream's, of a service older than priorities, included)."""
    for stream in k.streams:
        try:
            await rt.client.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise


async def dispatch(
    rt: Runtime,
    ex: Executor,
    k: ServiceKeys,
    entries: Sequence[Pending],
    marks: Marks | None = None,
    fresh: bool = False,
) -> int:
    """Claim ``entries`` (stream id, fields) of the stream ``k.stream`` (``k`` is the partition's
    keys at that entry's priority level) and start the runnable ones, each on one limiter slot
    the caller holds. Entries whose payload is gone (deleted while pending) are acked and
    logged as lost. With ``marks``, the entries come from a plain XREAD (not delivered yet):
    take.lua delivers and claims them, moves the stream's mark, and the entries it delivered
    unnamed are claimed after (never more than were named). Returns how many started (= slots
    used).

    An invocation running or settling here is left out (its entry stays pending); so is one
    another loop is claiming, unless the entries are ``fresh`` (new: delivered by a ``>`` read
    just now, or by the take): no other claim can hold such an entry, and a take that named it
    skips it, since it did not deliver it. Left out, it would wait for a reclaim."""
    pairs: list[tuple[str, str]] = []
    lost: list[str] = []
    for eid, fields in entries:
        inv = fields.get(b"i") if fields else None
        if inv is None:
            lost.append(text(eid))
        elif not rt.holds(text(inv), claiming=not fresh):
            pairs.append((text(eid), text(inv)))
    ids = [inv for _, inv in pairs]
    rt.claiming.update(ids)  # before any await: another loop must not claim these meanwhile
    try:
        if lost:
            await rt.client.scripts.record_lost(k, rt.consumer, lost)
            await rt.client.redis.xack(k.stream, GROUP, *lost)
        if not pairs:
            return 0
        lease_until = time.monotonic() + rt.config.lease_ms / 1000  # before the claim is sent
        extra: list[Pending] = []
        if marks is None:
            out = await rt.client.scripts.claim(k, rt.consumer, rt.config.lease_ms, pairs)
        else:
            taken = await rt.client.scripts.take(k, rt.consumer, rt.config.lease_ms, pairs)
            out = taken.claims
            marks.moved(k.stream, taken.mark)
            extra = [(eid, {b"i": inv.encode()}) for eid, inv in taken.extra]
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
            lease_until=lease_until,
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
    if extra:
        started += await dispatch(rt, ex, k, extra, fresh=True)
    return started


class Traffic(asyncio.Event):
    """Set once a read of a partition is full (it took as many entries as it asked for: there
    may be a backlog), cleared by a follower's read that finds none: the partition's following
    read loops read while it is set. ``turn``: the partition's
    place in the weighted read pattern, one for all its loops (each taking the next turn)."""

    def __init__(self) -> None:
        super().__init__()
        self.turn = 0
        self.marks = Marks()


class Reader:
    """Where a read loop is: ``history`` the level and id its read of this consumer's own pending
    entries goes on at (None once drained), ``turn`` its place in the read pattern (its
    ``traffic``'s when it has one), ``woke`` the new entries of the normal stream the wait that
    woke it found there alone (its next read takes them: ``fetch``); ``leads``: it waits
    in Redis when caught up (a follower does not); ``traffic``: its partition's, set by its full
    reads, before their claim; ``marks``: the last-delivered ids its wait starts from
    (its ``traffic``'s when it has one: ``fetch.Marks``), without XINFO when ``known`` (it read
    entries since its last wait)."""

    __slots__ = ("history", "known", "leads", "marks", "traffic", "turn", "woke")

    def __init__(
        self, own_pending: bool = True, *, leads: bool = True, traffic: Traffic | None = None
    ) -> None:
        self.history: tuple[int, str] | None = (0, "0") if own_pending else None
        self.turn = 0
        self.woke: Sequence[Pending] = ()
        self.leads = leads
        self.traffic = traffic
        self.marks = traffic.marks if traffic is not None else Marks()
        self.known = False


async def read_loop(rt: Runtime, ex: Executor, k: ServiceKeys, traffic: Traffic | None = None) -> None:
    """The leading loop of a partition: read new entries while there are free slots; on start,
    drain this consumer's own PELs; when caught up, wait in Redis for new entries."""
    reader = Reader(traffic=traffic)  # own pending entries first (a restarted worker with a stable name)
    pauses = Backoff(first=0.05, cap=5.0)
    while not rt.stopping.is_set():
        await _guarded(rt, ex, k, reader, pauses)


async def follow_loop(rt: Runtime, ex: Executor, k: ServiceKeys, traffic: Traffic) -> None:
    """A further reader of a partition: reads while ``traffic`` is set, and clears it once a read
    finds nothing (it never waits in Redis: the leading loop does)."""
    reader = Reader(own_pending=False, leads=False, traffic=traffic)
    pauses = Backoff(first=0.05, cap=5.0)
    while not rt.stopping.is_set():
        if not traffic.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(traffic.wait(), rt.config.block)
            continue
        if not await _guarded(rt, ex, k, reader, pauses):
            traffic.clear()


async def _guarded(rt: Runtime, ex: Executor, k: ServiceKeys, reader: Reader, pauses: Backoff) -> int:
    """One ``read_once``; a Redis error is logged and waited out, a lost group recreated.
    Returns how many entries were read (0 after an error)."""
    try:
        got = await read_once(rt, ex, k, reader)
        pauses.reset()
        return got
    except TRANSIENT as e:
        log.warning("read from %s failed (%s); retrying", k.service, e)
        await pauses.sleep()
    except ResponseError as e:
        if "NOGROUP" not in str(e):
            raise
        log.error("consumer group of %s is gone (server data lost?); recreating", k.service)
        await pauses.sleep()
        await ensure_group(rt, k)
    return 0


async def read_once(rt: Runtime, ex: Executor, k: ServiceKeys, reader: Reader) -> int:
    """Wait for free slots, read at most that many entries and start them; when there was
    nothing new and the reader leads, wait (holding no slot) for new entries. Returns how many
    entries were read."""
    held = await rt.limiter.acquire(rt.batch)
    if not held:
        return 0  # stopping
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
                _busy(reader, got == held)
                started = await dispatch(rt, ex, k.at(LEVELS[level]), entries)
        else:
            woke, reader.woke = reader.woke, ()
            if woke:  # the wait found them, in the normal stream alone: deliver and claim at once
                got = min(len(woke), held)
                _busy(reader, got == held)
                started = await dispatch(rt, ex, k.at(LEVELS[0]), woke[:held], reader.marks, fresh=True)
            else:
                if reader.traffic is not None:
                    q, reader.traffic.turn = quotas(reader.traffic.turn, held)
                else:
                    q, reader.turn = quotas(reader.turn, held)
                batches = await read_new(rt, k, q, reader.marks)
                got = sum(len(batch) for _, batch in batches)
                _busy(reader, got == held)
                for level, batch in batches:
                    started += await dispatch(rt, ex, k.at(LEVELS[level]), batch, fresh=True)
    finally:
        rt.limiter.release(held - started)
    if rt.adapt is not None:
        rt.adapt.read(held, got)  # a full read: there is a backlog, the limit is used
    if history is None and reader.leads:
        if got:
            reader.known = True  # its reads moved the marks: a wait may start from them
        if not got or reader.marks.ids is not None:
            # caught up, or reads that moved the known marks: wait from them (an XREAD that ends
            # at once when there are more, with the entries); after a wait that led nowhere,
            # from XINFO
            known, reader.known = reader.known, False
            reader.woke = await wait_for_new(rt, k, reader.marks, known, rt.batch)
            reader.known = bool(reader.woke)
    return got


def _busy(reader: Reader, full: bool) -> None:
    """A read took as many entries as it asked for (there may be more): the partition's
    followers read too while this read claims them."""
    if full and reader.traffic is not None:
        reader.traffic.set()
