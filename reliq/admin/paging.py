"""Step 1 of every admin view: which partitions to read, and how a page cursor positions itself
in an order merged over partitions. Plus the small reply decoders the views share.

A service's work may sit in any partition ``0..high-1`` of its layout (``reliq.store.layout``), so a
view reads all of them, or only the one an operator filters on (``partition=N``). The layout is
read fresh (one ``HGETALL``): an operator must not miss a partition another process just added.

Merged cursors. A list merged over several sources (one stream per partition, or per service and
partition for the audit log) is ordered by a key with the source as tie-break; a cursor names
the last item shown: ``<entry id>`` alone, or ``<entry id>@<source>`` when the next item has
the same entry id in a later source (ids are per stream, so two partitions can hold the same
id). A source after the cursor's source then starts at the id itself (inclusive), the others
just after it (exclusive). A plain id means "after this id in every source".

Sorted-set pages (``zset_page``: the parked sets, the archives, the suspended sets). Order: score
(a time, descending), then partition, then id (descending, as ``ZREVRANGE`` orders equal scores).
The cursor is ``<score>@<invocation id>`` of the last item shown (the id says its partition). The
next page reads, per partition, ``ZREVRANGEBYSCORE`` from the cursor's score, exclusive for
partitions before the cursor's, inclusive after it; in the cursor's own partition it also reads
the members with the same score (one ``ZCOUNT``) and skips those not after the cursor. So a page
costs the layout read, at most one ``ZCOUNT``, and one pipeline of ``ZCARD`` + one range of
``limit + 1`` per partition.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

from reliq.client import Client
from reliq.codec import text
from reliq.store.keys import ServiceKeys, locate
from reliq.store.layout import Layout, parse_layout

MAX_LIMIT = 500
_ENTRY_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")  # fullmatch: no trailing newline
U64 = (1 << 64) - 1


def clamp(limit: int) -> int:
    """Page sizes are clamped to 1..500."""
    return max(1, min(int(limit), MAX_LIMIT))


def _int(v: Any) -> int | None:
    return int(v) if v not in (None, b"", "") else None


def _ms(sec_usec: tuple[int, int]) -> int:
    return int(sec_usec[0]) * 1000 + int(sec_usec[1]) // 1000


class Scope(NamedTuple):
    layout: Layout
    keys: list[ServiceKeys]  # the partitions the view reads, in partition order


async def scope(client: Client, service: str, partition: int | None = None) -> Scope:
    """Every partition of ``service`` that may hold work, or only ``partition`` (which must be
    one of them: ``ValueError`` otherwise)."""
    lay = await client.layout(service, fresh=True)
    if partition is None:
        return Scope(lay, [client.keys(service, p) for p in range(lay.high)])
    if not 0 <= partition < lay.high:
        raise ValueError(f"no partition {partition}: {service} has partitions 0..{lay.high - 1}")
    return Scope(lay, [client.keys(service, partition)])


async def layouts(client: Client, services: list[str]) -> list[Layout]:
    """The layouts of several services, one pipelined read."""
    if not services:
        return []
    async with client.redis.pipeline(transaction=False) as p:
        for s in services:
            p.hgetall(client.keys(s).layout)
        return [parse_layout(raw) for raw in await p.execute()]


async def alive(client: Client, k: ServiceKeys, owners: set[str]) -> dict[str, bool]:
    """Which consumers have a heartbeat (service-wide keys: any partition's ``k`` will do)."""
    names = sorted(owners)
    if not names:
        return {}
    async with client.redis.pipeline(transaction=False) as p:
        for n in names:
            p.exists(k.consumer(n))
        return {n: bool(e) for n, e in zip(names, await p.execute(), strict=True)}


def entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


def parse_cursor(cursor: str | None) -> tuple[str, str | None] | None:
    """``(entry id, source or None)`` of a merged cursor; ``ValueError`` when malformed."""
    if not cursor:
        return None
    eid, at, source = cursor.partition("@")
    if not _entry_id(eid) or (at and not source):
        raise ValueError(f"malformed cursor {cursor!r}: use next_cursor of the previous page")
    return eid, source if at else None


def _entry_id(eid: str) -> bool:
    """A stream entry id a page can end at: two u64s, not ``0-0`` (no entry has it) nor the
    largest id (the next page's range, exclusive of it, would be a Redis error, not a 400)."""
    m = _ENTRY_ID.fullmatch(eid)
    if m is None:
        return False
    ms, seq = int(m.group(1)), int(m.group(2))
    return ms <= U64 and seq <= U64 and (ms, seq) not in ((0, 0), (U64, U64))


def next_cursor(eid: str, source: str, following: str | None) -> str:
    """The cursor after an item (``eid`` in ``source``): the tie-break is only spelled out when
    the following item (already read) has the same entry id."""
    return f"{eid}@{source}" if following == eid else eid


Row = tuple[bytes, float, int]  # (member, score, partition)


class ZPage(NamedTuple):
    now: int
    total: int  # members of the sets read (every partition in scope)
    rows: list[Row]  # the page, in order
    next_cursor: str | None
    partitions: int  # the layout's high


def _zcursor(cursor: str | None, service: str, high: int) -> tuple[int, str, int] | None:
    """(score, id, partition) of a cursor of ``service`` (whose layout's high is ``high``);
    ``None`` (or ``"0"``) is the first page. ``ValueError`` for a cursor that is malformed or
    names another service or a partition the service does not have."""
    if not cursor or cursor == "0":
        return None
    score, at, member = cursor.partition("@")
    if not at or not score.isdigit() or len(score) > 15:
        raise ValueError(f"malformed cursor {cursor!r}: use next_cursor of the previous page")
    name, part, _ = locate(member)  # InvalidName is a ValueError
    if name != service or part >= high:
        raise ValueError(f"malformed cursor {cursor!r}: not a cursor of {service}'s partitions")
    return int(score), member, part


async def zset_page(
    client: Client,
    service: str,
    key: Callable[[ServiceKeys], str],
    *,
    cursor: str | None,
    limit: int,
    partition: int | None,
) -> ZPage:
    """One page of the sorted sets ``key(partition keys)`` of every partition (or one), merged."""
    limit, sc = clamp(limit), await scope(client, service, partition)
    after = _zcursor(cursor, service, sc.layout.high)
    same_ms = 0
    if after and any(k.partition == after[2] for k in sc.keys):
        same_ms = int(await client.redis.zcount(key(client.keys(service, after[2])), after[0], after[0]))
    async with client.redis.pipeline(transaction=False) as p:
        p.time()
        for k in sc.keys:
            p.zcard(key(k))
            if after is None:
                p.zrevrange(key(k), 0, limit, withscores=True)
            else:
                score, _, cp = after
                top = f"({score}" if k.partition < cp else score
                extra = same_ms if k.partition == cp else 0
                p.zrevrangebyscore(key(k), top, "-inf", start=0, num=limit + 1 + extra, withscores=True)
        replies = await p.execute()
    total, rows = 0, []
    for i, k in enumerate(sc.keys):
        total += int(replies[1 + 2 * i])
        for m, s in replies[2 + 2 * i]:
            if after and k.partition == after[2] and s == after[0] and text(m) >= after[1]:
                continue  # same score as the cursor, at or before it
            rows.append((m, s, k.partition))
    rows.sort(key=lambda r: r[0], reverse=True)  # newest first; same score: lower partition, id desc
    rows.sort(key=lambda r: (-r[1], r[2]))
    last = rows[limit - 1] if len(rows) > limit else None
    nxt = f"{int(last[1])}@{text(last[0])}" if last else None
    return ZPage(_ms(replies[0]), total, rows[:limit], nxt, sc.layout.high)
