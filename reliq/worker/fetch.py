"""Fetch new entries of a partition: read them by the weighted read rule, and wait for them.

A caught-up read loop waits with a plain XREAD from the group's last-delivered id of each level's
stream (``wait_for_new``), which delivers nothing and so holds no limiter slot. When only the
normal stream woke it, the XREAD's entries are what the loop starts next: take.lua delivers and
claims them in one call (no XREADGROUP round trip, and one fsync fewer on an ``appendfsync
always`` server), and reports where the group's reads stand, the id the next wait starts from.
Those ids come from ``XINFO GROUPS`` (one round trip), or, when the loop's reads found entries
since its last wait, from what the partition's loops already know (``Marks``): the last id their
plain reads and takes of the normal stream reached, and the other levels' ids of the last
``XINFO``. A known id that went stale (another consumer delivered past it) costs a take that
delivers nothing (or entries it did not name, claimed with claim.lua) and moves the id past what
the stream holds. An id ahead of the group's (a server that lost its last writes and restarted)
cannot strand work: every wait ends within ``block``, and the loop reads with ``>`` after it,
woken or not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from reliq.codec import text
from reliq.store.keys import GROUP, ServiceKeys
from reliq.worker.inflight import Runtime

Pending = tuple[Any, dict[Any, Any] | None]  # a delivered entry: (stream id, fields)


class Marks:
    """The last-delivered id of each level's stream as the read loops of one partition know it
    (None: not known, read ``XINFO``): every plain read and take of the normal stream moves its
    mark."""

    __slots__ = ("ids",)

    def __init__(self) -> None:
        self.ids: dict[str, str] | None = None

    def read(self, stream: str, entries: Sequence[Pending]) -> None:
        """Entries of ``stream`` were delivered: its mark is at least the last one's id."""
        if entries:
            self.moved(stream, text(entries[-1][0]))

    def moved(self, stream: str, mark: str | None) -> None:
        """A take reports where the group's reads of ``stream`` stand (None: not known); a mark
        only moves on (another loop's read may have moved it further meanwhile)."""
        if self.ids is not None and mark and _id(mark) > _id(self.ids.get(stream, "0-0")):
            self.ids[stream] = mark

    def forget(self) -> None:
        self.ids = None


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def read_new(
    rt: Runtime, k: ServiceKeys, q: list[int], marks: Marks | None = None
) -> list[tuple[int, Sequence[Pending]]]:
    """New entries by the weighted read rule, per level (an index of ``LEVELS``). While the high
    and low streams are empty (the common case) the rule gives every slot to normal: one plain
    XREADGROUP does that without the script, whose copy of every entry into Lua and back costs
    Valkey more than the read itself. The lengths are read first, so an entry of another level
    that was there before this read is never passed over (one that comes later is for the next
    read, as with the script). ``marks``: moved by a plain read, forgotten after a scripted one."""
    redis = rt.client.redis
    async with redis.pipeline(transaction=False) as p:
        for stream in k.streams[1:]:
            p.xlen(stream)
        others: list[int] = await p.execute()
    if not any(others):
        resp = await redis.xreadgroup(GROUP, rt.consumer, {k.streams[0]: ">"}, count=sum(q))
        if not resp:
            return []
        if marks is not None:
            marks.read(k.streams[0], resp[0][1])
        return [(0, resp[0][1])]
    if marks is not None:
        marks.forget()
    out: list[tuple[int, Sequence[Pending]]] = []
    for level, flat in enumerate(await rt.client.scripts.read(k, rt.consumer, q)):
        if flat:
            out.append((level, [(flat[i], {b"i": flat[i + 1]}) for i in range(0, len(flat), 2)]))
    return out


async def wait_for_new(
    rt: Runtime, k: ServiceKeys, marks: Marks | None = None, known: bool = False, count: int = 1
) -> Sequence[Pending]:
    """Block until a level's stream holds an entry the group has not delivered yet (or ``block``
    passes): XREAD from the groups' last-delivered ids reads without delivering anything. With
    ``known``, from the ids ``marks`` holds (no ``XINFO`` round trip); otherwise they are read and
    kept in ``marks``. Returns the normal stream's new entries (at most ``count``) when they alone
    woke it, for a take; none when another level did, or nothing came."""
    redis = rt.client.redis
    last: dict[str, str | bytes]
    if known and marks is not None and marks.ids is not None:
        last = dict(marks.ids)
    else:
        last = await _delivered(rt, k)
        if marks is not None:
            marks.ids = {s: text(v) for s, v in last.items()}
    woke = await redis.xread(last, count=count, block=int(rt.config.block * 1000))
    pairs = woke.items() if isinstance(woke, dict) else woke or ()
    found = [(text(stream), entries) for stream, entries in pairs]
    if len(found) == 1 and found[0][0] == k.streams[0]:
        return found[0][1]
    return []


async def _delivered(rt: Runtime, k: ServiceKeys) -> dict[str, str | bytes]:
    """The group's last-delivered id of each level's stream (``XINFO GROUPS``, one pipeline)."""
    last: dict[str, str | bytes] = {}
    try:
        async with rt.client.redis.pipeline(transaction=False) as p:
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
    return last
